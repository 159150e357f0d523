"""POST /gates/evaluate end to end: decided from projections fed by the broker, recorded as an event."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from greenzone_common.audit import Actor
from greenzone_common.contracts.change import ChangeApproved, ChangeCreated
from greenzone_common.contracts.common import FindingsBySeverity, Risk, TestCounts
from greenzone_common.contracts.pipeline import DeploymentObserved, ScanReported, TestsReported
from greenzone_common.db import unit_of_work
from greenzone_common.testing.helpers import bearer, eventually
from release_svc.gates import service

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("consumers_ready")]

Publish = Callable[..., Awaitable[str]]
Query = Callable[..., Awaitable[list[asyncpg.Record]]]
Events = Callable[[str], Awaitable[list[dict[str, Any]]]]
PIPELINE = bearer("ci-bot", "pipeline")
RM = bearer("rita", "release_manager")
NOW = datetime.now(UTC)
ASK = {"environment": "production", "version": "1.4.2", "commit": "a" * 40, "change_id": None}


async def gate(client: httpx.AsyncClient, svc: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/gates/evaluate", json={"service": svc, **ASK, **overrides}, headers=PIPELINE)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(decision: dict[str, Any]) -> list[str]:
    return [r["code"] for r in decision["reasons"]]


async def approved_change(publish: Publish, svc: str, change_id: str, type: str = "normal") -> None:
    common: dict[str, Any] = {
        "change_id": change_id,
        "number": "CHG-000042",
        "type": type,
        "service": svc,
        "environment": "production",
    }
    await publish(
        ChangeCreated(
            **common, title="t", requested_by="alice", version="1.4.2", risk=Risk(score=5, level="low"), created_at=NOW
        )
    )
    await publish(ChangeApproved(**common, required_approvals=1, version="1.4.2", approved_at=NOW))


async def until(query: Query, sql: str, *args: Any) -> None:
    async def check() -> bool:
        return bool(await query(sql, *args))

    await eventually(check, timeout=30)


async def test_denial_without_change_drafts_one_and_says_so_in_the_event(
    client: httpx.AsyncClient, svc: str, outbox_events: Events, query: Query
) -> None:
    first = await gate(client, svc)
    assert first["decision"] == "deny"
    assert codes(first) == ["NO_APPROVED_CHANGE", "PROMOTION_ORDER"]
    assert first["change_id"] and first["evaluated_at"].endswith("Z")
    [event] = await outbox_events("dev.greenzone.gate.evaluated.v1")
    assert event["decision_id"] == first["decision_id"]
    assert (event["change_id"], event["change_auto_created"], event["decision"]) == (first["change_id"], True, "deny")
    assert [r["code"] for r in event["reasons"]] == codes(first)
    assert (event["service"], event["environment"], event["version"], event["requested_by"]) == (
        svc,
        "production",
        "1.4.2",
        "ci-bot",
    )
    # the pipeline retries: the same draft, not a new one
    again = await gate(client, svc)
    assert again["change_id"] == first["change_id"]
    assert [e["change_auto_created"] for e in await outbox_events("dev.greenzone.gate.evaluated.v1")] == [True, False]
    recorded = await client.get(f"/gates/decisions/{first['decision_id']}", headers=bearer("v", "viewer"))
    assert recorded.json()["reasons"] == first["reasons"]


async def test_unprotected_environment_is_allowed_without_change(client: httpx.AsyncClient, svc: str) -> None:
    decision = await gate(client, svc, environment="staging")
    assert (decision["decision"], decision["reasons"], decision["change_id"]) == ("allow", [], None)


async def test_gate_follows_the_projections(
    client: httpx.AsyncClient, svc: str, publish: Publish, query: Query
) -> None:
    chg = f"chg-{svc}"
    await approved_change(publish, svc, chg)
    await publish(
        DeploymentObserved(
            service=svc,
            environment="staging",
            version="1.4.2",
            outcome="success",
            at=NOW,
            source="github",
            source_id=f"s-1-{svc}",
        )
    )
    await publish(
        TestsReported(
            service=svc,
            version="1.4.2",
            suite="unit",
            counts=TestCounts(passed=3),
            outcome="success",
            reported_at=NOW,
        )
    )
    await until(query, "SELECT 1 FROM release.test_reports WHERE service = $1", svc)
    await until(query, "SELECT 1 FROM release.deployments WHERE service = $1", svc)
    await until(query, "SELECT 1 FROM release.changes WHERE state = 'approved' AND service = $1", svc)
    allowed = await gate(client, svc)
    assert (allowed["decision"], allowed["reasons"], allowed["change_id"]) == ("allow", [], chg)

    await publish(
        ScanReported(
            service=svc, commit="a" * 40, tool="trivy", findings=FindingsBySeverity(critical=1), reported_at=NOW
        )
    )
    await until(query, "SELECT 1 FROM release.scan_reports WHERE service = $1", svc)
    denied = await gate(client, svc)
    assert (denied["decision"], codes(denied), denied["change_id"]) == ("deny", ["SECURITY_GATE_FAILED"], chg)

    await publish(
        TestsReported(
            service=svc,
            version="1.4.2",
            suite="unit",
            counts=TestCounts(failed=1),
            outcome="failure",
            reported_at=NOW + timedelta(seconds=1),
        )
    )
    await until(query, "SELECT 1 FROM release.test_reports WHERE outcome = 'failure' AND service = $1", svc)
    assert codes(await gate(client, svc)) == ["QUALITY_GATE_FAILED", "SECURITY_GATE_FAILED"]


async def test_freeze_and_window_deny_and_an_emergency_change_lifts_them(
    client: httpx.AsyncClient, svc: str, publish: Publish, query: Query, outbox_events: Events
) -> None:
    await approved_change(publish, svc, f"normal-{svc}")
    await publish(
        DeploymentObserved(
            service=svc,
            environment="staging",
            version="1.4.2",
            outcome="success",
            at=NOW,
            source="github",
            source_id=f"s-2-{svc}",
        )
    )
    await until(query, "SELECT 1 FROM release.deployments WHERE service = $1", svc)
    await until(query, "SELECT 1 FROM release.changes WHERE state = 'approved' AND service = $1", svc)
    freeze = {
        "name": "Peak",
        "start": (NOW - timedelta(hours=1)).isoformat(),
        "end": (NOW + timedelta(days=1)).isoformat(),
        "environments": ["production"],
        "reason": "peak",
    }
    assert (await client.post("/freezes", json=freeze, headers=RM)).status_code == 201
    today = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(datetime.now(UTC) + timedelta(days=3)).weekday()]
    window = {"environment": "production", "days": [today], "start": "00:00", "end": "23:59", "timezone": "UTC"}
    assert (await client.post("/windows", json=window, headers=RM)).status_code == 201
    denied = await gate(client, svc)
    assert codes(denied) == ["FREEZE_ACTIVE", "OUTSIDE_DEPLOYMENT_WINDOW"]

    emergency = f"emergency-{svc}"
    await approved_change(publish, svc, emergency, type="emergency")
    await until(query, "SELECT 1 FROM release.changes WHERE change_id = $1 AND state = 'approved'", emergency)
    allowed = await gate(client, svc)
    assert (allowed["decision"], codes(allowed), allowed["change_id"]) == (
        "allow",
        ["EMERGENCY_OVERRIDE"],
        emergency,
    )
    events = await outbox_events("dev.greenzone.gate.evaluated.v1")
    assert [r["code"] for r in events[-1]["reasons"]] == ["EMERGENCY_OVERRIDE"]


async def test_gate_roles_and_validation(client: httpx.AsyncClient, svc: str) -> None:
    ask = {**ASK, "service": svc}
    assert (await client.post("/gates/evaluate", json=ask)).status_code == 401
    assert (await client.post("/gates/evaluate", json=ask, headers=bearer("v", "viewer"))).status_code == 403
    assert (await client.post("/gates/evaluate", json=ask, headers=RM)).status_code == 200
    assert (await client.post("/gates/evaluate", json=ask, headers=bearer("a", "admin"))).status_code == 200
    missing = await client.post("/gates/evaluate", json={"service": "api"}, headers=PIPELINE)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "environment"]


class _Abandoned(Exception):
    pass


@pytest.mark.parametrize("first", [True, False], ids=["first-statement", "after-other-statements"])
async def test_a_decision_belongs_to_its_callers_transaction(
    release_app: Any, client: httpx.AsyncClient, query: Query, svc: str, first: bool
) -> None:
    """The gate writes its rows straight through the driver: in the caller's transaction all the same, so a use case
    that fails after the gate leaves no decision, audit entry, event or draft change (whether the gate's statements
    are its first, or come after the session's own)."""
    runtime = release_app.state.runtime
    request = service.normalise(svc, "production", "9.9.9", None, None)
    with pytest.raises(_Abandoned):
        async with unit_of_work(runtime.sessions) as session:
            if not first:
                await session.execute(text("SELECT 1"))
            decision = await service.evaluate(
                session, runtime.outbox, request, requested_by="rita", now=datetime.now(UTC), actor=Actor(sub="rita")
            )
            assert decision.change_auto_created  # no change: a draft was staged too
            raise _Abandoned
    assert not await query("SELECT 1 FROM release.gate_decisions WHERE decision_id = $1", decision.decision_id)
    assert not await query("SELECT 1 FROM release.audit_log WHERE entity_id = $1", decision.decision_id)
    assert not await query("SELECT 1 FROM release.outbox WHERE data->>'decision_id' = $1", decision.decision_id)
    assert not await query("SELECT 1 FROM release.changes WHERE change_id = $1", decision.change_id)
    # and committed, all of them are there
    async with unit_of_work(runtime.sessions) as session:
        decision = await service.evaluate(
            session, runtime.outbox, request, requested_by="rita", now=datetime.now(UTC), actor=Actor(sub="rita")
        )
    assert await query("SELECT 1 FROM release.gate_decisions WHERE decision_id = $1", decision.decision_id)
    assert await query("SELECT 1 FROM release.audit_log WHERE entity_id = $1", decision.decision_id)
    assert await query("SELECT 1 FROM release.outbox WHERE data->>'decision_id' = $1", decision.decision_id)
    assert await query("SELECT 1 FROM release.changes WHERE change_id = $1 AND state = 'draft'", decision.change_id)


async def test_a_decision_that_cannot_be_recorded_leaves_nothing(
    release_app: Any, client: httpx.AsyncClient, query: Query, svc: str
) -> None:
    """POST /gates/evaluate records everything in one statement: when a part of it fails (here the draft change's
    title, longer than its column), nothing at all is recorded, and the connection serves the next decisions."""
    name = svc + "x" * (200 - len(svc))  # with a 100-character version the draft's title exceeds 300 characters
    transport = httpx.ASGITransport(app=release_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
        ask = {"service": name, "environment": "production", "version": "v" * 100}
        response = await raw.post("/gates/evaluate", json=ask, headers=PIPELINE)
    assert response.status_code == 500
    assert not await query("SELECT 1 FROM release.gate_decisions WHERE service = $1", name)
    assert not await query("SELECT 1 FROM release.audit_log WHERE after->>'service' = $1", name)
    assert not await query("SELECT 1 FROM release.outbox WHERE key = $1", name)
    assert not await query("SELECT 1 FROM release.changes WHERE service = $1", name)
    for _ in range(12):  # more than the pool holds
        assert (await gate(client, svc))["decision"] == "deny"


async def test_concurrent_decisions_are_recorded_together_and_a_bad_one_fails_alone(
    release_app: Any, client: httpx.AsyncClient, query: Query, svc: str
) -> None:
    """POST /gates/evaluate reads the snapshots and records the decisions of concurrent requests in batches (one
    statement for a batch):
    every caller gets its own decision, recorded with its audit entry and its event in the order the batch holds
    them; a decision that cannot be recorded (here a draft title longer than its column) fails its own request
    and no other, and none of it is written."""
    runtime = release_app.state.runtime
    batches = service.GateBatches.of(runtime.engine, runtime.outbox.table)
    recorder, reader = batches.record, batches.read
    before = (recorder.stats.batches, recorder.stats.items, recorder.stats.retried)
    reads_before = (reader.stats.batches, reader.stats.items)
    name = svc + "x" * (200 - len(svc))
    transport = httpx.ASGITransport(app=release_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
        asks = [{"service": svc, "environment": "production", "version": f"2.0.{i}"} for i in range(24)]
        asks.insert(12, {"service": name, "environment": "production", "version": "v" * 100})
        responses = await asyncio.gather(*(raw.post("/gates/evaluate", json=a, headers=PIPELINE) for a in asks))

    statuses = [r.status_code for r in responses]
    assert statuses[12] == 500 and statuses.count(200) == 24
    decisions = [r.json() for i, r in enumerate(responses) if i != 12]
    assert [d["version"] for d in decisions] == [f"2.0.{i}" for i in range(24)]
    rows = await query(
        "SELECT decision_id, change_id FROM release.gate_decisions WHERE service = $1 AND version LIKE '2.0.%'",
        svc,
    )
    assert {(r["decision_id"], r["change_id"]) for r in rows} == {(d["decision_id"], d["change_id"]) for d in decisions}
    audited = await query("SELECT entity_id FROM release.audit_log WHERE after->>'service' = $1", svc)
    assert {d["decision_id"] for d in decisions} <= {r["entity_id"] for r in audited}
    events = await query(
        "SELECT data->>'decision_id' AS id, seq FROM release.outbox WHERE key = $1 AND data->>'version' LIKE '2.0.%'"
        " ORDER BY seq",
        svc,
    )
    assert sorted(e["id"] for e in events) == sorted(d["decision_id"] for d in decisions)
    drafts = await query("SELECT change_id FROM release.changes WHERE service = $1 AND state = 'draft'", svc)
    assert {d["change_id"] for d in decisions} <= {r["change_id"] for r in drafts}
    assert not await query("SELECT 1 FROM release.gate_decisions WHERE service = $1", name)
    assert not await query("SELECT 1 FROM release.outbox WHERE key = $1", name)
    batches, items, retried = (
        recorder.stats.batches - before[0],
        recorder.stats.items - before[1],
        recorder.stats.retried - before[2],
    )
    assert items >= 25 and batches < items  # recorded together, not one statement each
    assert retried >= 1  # the batch holding the bad one was run again decision by decision
    reads, asked = reader.stats.batches - reads_before[0], reader.stats.items - reads_before[1]
    assert asked == 25 and reads < asked  # the snapshots too were read together
