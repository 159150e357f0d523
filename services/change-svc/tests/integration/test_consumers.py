"""The consumed flows, through the real broker: evidence for risk and auto-approval, drafts from the gate,
completion from release and observed deployments, freezes in the schedule and the change failure rate."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from change_svc.config import Settings
from greenzone_common import kafka
from greenzone_common.contracts.base import EventData
from greenzone_common.contracts.common import FindingsBySeverity, GateReason, TestCounts
from greenzone_common.contracts.pipeline import DeploymentObserved, RollbackObserved, ScanReported, TestsReported
from greenzone_common.contracts.release import (
    FreezeLifted,
    FreezeScheduled,
    GateEvaluated,
    ReleaseDeployed,
    ReleaseDeploymentRequested,
    ReleasePlanned,
    ReleaseRolledBack,
)
from greenzone_common.envelope import encode
from greenzone_common.testing.helpers import bearer, eventually

from .conftest import ALICE, BOB, assert_valid_ticket, create, post

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


@pytest.fixture
def svc() -> str:
    """A service name of the test's own."""
    return f"svc-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def publish(change_settings: Settings) -> Callable[..., Awaitable[list[str]]]:
    async def send(*events: EventData, source: str = "/greenzone/release-svc") -> list[str]:
        producer = kafka.producer(change_settings)
        await producer.start()
        ids = []
        try:
            for data in events:
                event_id = str(uuid.uuid4())
                key, value, headers = encode(
                    id=event_id,
                    source=source,
                    type=data.event_type,
                    subject=data.key(),
                    time=datetime.now(UTC),
                    data=data.model_dump(mode="json"),
                )
                await producer.send_and_wait(data.topic, value=value, key=key, headers=headers)
                ids.append(event_id)
        finally:
            await producer.stop()
        return ids

    return send


async def until(client: httpx.AsyncClient, change_id: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/changes/{change_id}", headers=ALICE)
        if response.status_code != 200:
            return None
        body = dict(response.json())
        return body if check(body) else None

    return await eventually(probe, timeout=30)


async def rows(db: asyncpg.Connection, sql: str, *args: Any, at_least: int = 1) -> int:
    async def probe() -> int:
        return int(await db.fetchval(sql, *args))

    return await eventually(lambda: _at_least(probe, at_least), timeout=30)


async def _at_least(probe: Callable[[], Awaitable[int]], n: int) -> int | None:
    value = await probe()
    return value if value >= n else None


def suite_reported(svc: str, version: str, outcome: str = "success", failed: int = 0, suite: str = "unit") -> EventData:
    return TestsReported(
        service=svc,
        version=version,
        suite=suite,
        counts=TestCounts(passed=40, failed=failed),
        outcome=outcome,  # type: ignore[arg-type]
        reported_at=NOW,
        source="junit",
    )


def scan_reported(svc: str, version: str, critical: int = 0, high: int = 0) -> EventData:
    return ScanReported(
        service=svc,
        version=version,
        tool="trivy",
        findings=FindingsBySeverity(critical=critical, high=high, medium=3),
        reported_at=NOW,
    )


async def approved_change(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    change = await create(client, **overrides)
    await post(client, f"/changes/{change['id']}/submit", ALICE)
    approved = await post(client, f"/changes/{change['id']}/approvals", BOB, {"decision": "approve"}, 201)
    if approved["state"] != "approved":  # a medium-risk change needs a second approver
        approved = await post(
            client, f"/changes/{change['id']}/approvals", bearer("carol", "approver"), {"decision": "approve"}, 201
        )
    assert approved["state"] == "approved"
    return approved


# --- evidence → risk and auto-approval -------------------------------------------------------------------------------


async def test_passing_evidence_auto_approves_a_low_risk_normal_change(
    client: httpx.AsyncClient, db: asyncpg.Connection, publish: Any, svc: str
) -> None:
    await publish(suite_reported(svc, "2.0.0"), scan_reported(svc, "2.0.0"), source="/greenzone/pipeline-svc")
    await rows(db, "SELECT count(*) FROM change.test_results WHERE service = $1", svc)
    await rows(db, "SELECT count(*) FROM change.scan_results WHERE service = $1", svc)

    change = await create(client, service=svc, version="2.0.0")
    assert "NO_TEST_EVIDENCE" not in [f["code"] for f in change["risk"]["factors"]]
    submitted = await post(client, f"/changes/{change['id']}/submit", ALICE)

    assert submitted["state"] == "approved"
    assert submitted["auto_approved"] is True
    assert "1 test suites passing (40 tests)" in submitted["auto_approval_reasons"]
    [approval] = submitted["approvals"]
    assert (approval["by"], approval["decision"], approval["policy"]) == ("greenzone:auto-approval", "approve", True)
    assert "risk is low" in approval["comment"]
    assert submitted["evidence"]["tests"]["suites"] == 1


async def test_failing_tests_and_findings_raise_risk_and_block_auto_approval(
    client: httpx.AsyncClient, db: asyncpg.Connection, publish: Any, svc: str
) -> None:
    await publish(
        suite_reported(svc, "2.0.1", outcome="failure", failed=3),
        scan_reported(svc, "2.0.1", critical=1, high=2),
        source="/greenzone/pipeline-svc",
    )
    await rows(db, "SELECT count(*) FROM change.scan_results WHERE service = $1", svc)
    await rows(db, "SELECT count(*) FROM change.test_results WHERE service = $1", svc)

    change = await create(client, service=svc, version="2.0.1")
    points = {f["code"]: f["points"] for f in change["risk"]["factors"]}
    assert points["FAILING_TESTS"] == 25 and points["CRITICAL_FINDINGS"] == 30 and points["HIGH_FINDINGS"] == 15
    assert change["risk"]["level"] == "high"
    submitted = await post(client, f"/changes/{change['id']}/submit", ALICE)
    assert (submitted["state"], submitted["auto_approved"], submitted["required_approvals"]) == (
        "awaiting_approval",
        False,
        3,
    )
    assert "1 test suites failing" in submitted["auto_approval_reasons"]


async def test_evidence_arriving_after_creation_counts_at_submission(
    client: httpx.AsyncClient, db: asyncpg.Connection, publish: Any, svc: str
) -> None:
    change = await create(client, service=svc, version="3.0.0")
    assert "NO_TEST_EVIDENCE" in [f["code"] for f in change["risk"]["factors"]]
    await publish(suite_reported(svc, "3.0.0"), source="/greenzone/pipeline-svc")
    await rows(db, "SELECT count(*) FROM change.test_results WHERE service = $1", svc)

    submitted = await post(client, f"/changes/{change['id']}/submit", ALICE)
    assert submitted["auto_approved"] is True
    assert "NO_TEST_EVIDENCE" not in [f["code"] for f in submitted["risk"]["factors"]]


# --- the gate drafts changes -----------------------------------------------------------------------------------------


async def test_gate_denial_with_a_generated_change_id_drafts_that_change(
    client: httpx.AsyncClient, db: asyncpg.Connection, publish: Any, svc: str
) -> None:
    change_id = str(uuid.uuid4())
    denial = GateEvaluated(
        decision_id=str(uuid.uuid4()),
        service=svc,
        environment="production",
        version="4.1.0",
        commit="c" * 40,
        decision="deny",
        reasons=[GateReason(code="NO_APPROVED_CHANGE", message="no approved change for the service")],
        change_id=change_id,
        change_auto_created=True,
        protected=True,
        requested_by="github-actions",
        evaluated_at=NOW,
    )
    allowed = denial.model_copy(update={"decision": "allow", "change_id": str(uuid.uuid4()), "reasons": []})
    await publish(denial, allowed)
    draft = await until(client, change_id, lambda c: c["state"] == "draft")

    assert (draft["requested_by"], draft["service"], draft["environment"], draft["version"]) == (
        "github-actions",
        svc,
        "production",
        "4.1.0",
    )
    assert draft["auto_created"] is True
    assert draft["commits"] == ["c" * 40]
    assert draft["evidence"]["gate"]["decision_id"] == denial.decision_id
    assert draft["evidence"]["gate"]["reasons"][0]["code"] == "NO_APPROVED_CHANGE"
    [history] = (await client.get(f"/changes/{change_id}/history", headers=ALICE)).json()
    assert (history["actor"], history["event_type"]) == ("github-actions", GateEvaluated.event_type)

    await publish(denial)  # the same denial again (a new event id): still one change
    await rows(db, "SELECT count(*) FROM change.inbox WHERE ce_type = $1", GateEvaluated.event_type, at_least=3)
    assert await db.fetchval("SELECT count(*) FROM change.changes WHERE service = $1", svc) == 1
    created = await db.fetchval(
        "SELECT data->>'auto_created' FROM change.outbox WHERE key = $1 AND type = 'dev.greenzone.change.created.v1'",
        change_id,
    )
    assert created == "true"
    # a gate-drafted change is a ticket for outside tools from the moment it is drafted
    [ticket] = await db.fetch(
        "SELECT type, data FROM change.outbox WHERE key = $1 AND topic = 'greenzone.cdevents'", change_id
    )
    data = json.loads(ticket["data"]) if isinstance(ticket["data"], str) else ticket["data"]
    assert ticket["type"] == "dev.cdevents.ticket.created.0.2.0"
    assert_valid_ticket(ticket["type"], data)
    assert (data["subject"]["id"], data["subject"]["content"]["creator"]) == (change_id, "github-actions")


# --- deployments complete changes ------------------------------------------------------------------------------------


def release_event(model: type[Any], release_id: str, svc: str, changes: list[str], **fields: Any) -> Any:
    return model(
        release_id=release_id, name="R", version="5.0.0", services=[svc], changes=changes, state="in_progress", **fields
    )


async def test_release_deployment_completes_its_changes_and_a_rollback_marks_them(
    client: httpx.AsyncClient, publish: Any, svc: str
) -> None:
    release_id = str(uuid.uuid4())
    bundled = await approved_change(client, service=svc, environment="production", version="5.0.0")
    by_release_id = await approved_change(
        client, service=svc, environment="production", release_id=release_id, version="5.0.0"
    )
    elsewhere = await approved_change(client, service=svc, environment="staging", release_id=release_id)
    waiting = await create(client, service=svc, environment="production", release_id=release_id)

    await publish(
        release_event(
            ReleaseDeploymentRequested,
            release_id,
            svc,
            [bundled["id"]],
            environment="production",
            requested_at=NOW,
        )
    )
    await until(client, bundled["id"], lambda c: c["state"] == "implementing")
    await publish(
        release_event(
            ReleaseDeployed,
            release_id,
            svc,
            [bundled["id"]],
            environment="production",
            outcome="success",
            deployment_id="d-1",
            deployed_at=NOW,
        )
    )
    for change in (bundled, by_release_id):
        done = await until(client, change["id"], lambda c: c["state"] == "completed")
        assert done["outcome"] == "successful"
        assert done["review_due"] is None
    assert (await client.get(f"/changes/{elsewhere['id']}", headers=ALICE)).json()["state"] == "approved"
    assert (await client.get(f"/changes/{waiting['id']}", headers=ALICE)).json()["state"] == "draft"
    history = (await client.get(f"/changes/{by_release_id['id']}/history", headers=ALICE)).json()
    assert [h["action"] for h in history][-2:] == ["started", "completed"]

    await publish(
        release_event(ReleaseRolledBack, release_id, svc, [bundled["id"]], environment="production", rolled_back_at=NOW)
    )
    rolled = await until(client, bundled["id"], lambda c: c["outcome"] == "rolled_back")
    assert rolled["state"] == "completed"
    assert rolled["review_due"] is not None
    reviews = [r["id"] for r in (await client.get("/reviews", headers=ALICE)).json()]
    assert bundled["id"] in reviews


async def test_failed_release_deployment_completes_changes_failed(
    client: httpx.AsyncClient, publish: Any, svc: str
) -> None:
    release_id = str(uuid.uuid4())
    change = await approved_change(client, service=svc, environment="production", release_id=release_id)
    await publish(
        release_event(
            ReleaseDeployed, release_id, svc, [], environment="production", outcome="failure", deployed_at=NOW
        )
    )
    failed = await until(client, change["id"], lambda c: c["state"] == "completed")
    assert failed["outcome"] == "failed"
    assert failed["review_due"] is not None


async def test_observed_deployment_naming_a_change_completes_it(
    client: httpx.AsyncClient, publish: Any, svc: str
) -> None:
    change = await approved_change(client, service=svc, environment="production")
    observed = DeploymentObserved(
        service=svc,
        environment="production",
        version="9.9.9",
        outcome="success",
        at=NOW,
        source="github",
        source_id=str(uuid.uuid4()),
        change_id=change["id"],
    )
    await publish(observed, source="/greenzone/pipeline-svc")
    done = await until(client, change["id"], lambda c: c["state"] == "completed")
    assert done["outcome"] == "successful"

    await publish(
        RollbackObserved(service=svc, environment="production", at=NOW + timedelta(minutes=5), source="argocd"),
        source="/greenzone/pipeline-svc",
    )
    rolled = await until(client, change["id"], lambda c: c["outcome"] == "rolled_back")
    assert rolled["review_due"] is not None


async def test_observed_deployment_matching_a_release_version_completes_its_changes(
    client: httpx.AsyncClient, publish: Any, svc: str
) -> None:
    release_id = str(uuid.uuid4())
    change = await approved_change(client, service=svc, environment="production", version=None)
    other_env = await approved_change(client, service=svc, environment="staging", version=None)
    await publish(
        ReleasePlanned(
            release_id=release_id,
            name="R",
            version="6.0.0",
            services=[svc],
            changes=[change["id"], other_env["id"]],
            state="planned",
            planned_at=NOW,
        )
    )
    await publish(
        DeploymentObserved(
            service=svc,
            environment="production",
            version="6.0.0",
            outcome="failure",
            at=NOW,
            source="gitlab",
            source_id="77",
        ),
        source="/greenzone/pipeline-svc",
    )
    failed = await until(client, change["id"], lambda c: c["state"] == "completed")
    assert failed["outcome"] == "failed"
    assert (await client.get(f"/changes/{other_env['id']}", headers=ALICE)).json()["state"] == "approved"


async def test_observed_deployment_of_an_unapproved_change_completes_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection, publish: Any, svc: str
) -> None:
    change = await create(client, service=svc, environment="production")
    await publish(
        DeploymentObserved(
            service=svc,
            environment="production",
            outcome="success",
            at=NOW,
            source="github",
            source_id=str(uuid.uuid4()),
            change_id=change["id"],
        ),
        source="/greenzone/pipeline-svc",
    )
    await rows(db, "SELECT count(*) FROM change.deployments WHERE service = $1", svc)
    assert (await client.get(f"/changes/{change['id']}", headers=ALICE)).json()["state"] == "draft"


# --- failure rate and freezes ----------------------------------------------------------------------------------------


async def test_recent_failed_deployments_raise_the_risk_of_the_services_changes(
    client: httpx.AsyncClient, db: asyncpg.Connection, publish: Any, svc: str
) -> None:
    deployments = [
        DeploymentObserved(
            service=svc,
            environment="production",
            outcome="failure" if i < 2 else "success",
            at=NOW - timedelta(days=i + 1),
            source="github",
            source_id=f"{svc}-{i}",
        )
        for i in range(5)
    ]
    old = DeploymentObserved(
        service=svc,
        environment="production",
        outcome="failure",
        at=NOW - timedelta(days=120),
        source="github",
        source_id=f"{svc}-old",
    )
    await publish(*deployments, old, source="/greenzone/pipeline-svc")
    await rows(db, "SELECT count(*) FROM change.deployments WHERE service = $1", svc, at_least=6)

    change = await create(client, service=svc, environment="production")
    factor = next(f for f in change["risk"]["factors"] if f["code"] == "CHANGE_FAILURE_RATE")
    assert factor["points"] == 20
    assert "2 of 5" in factor["detail"]


async def test_freezes_show_in_the_schedule_and_raise_risk_until_lifted(
    client: httpx.AsyncClient, db: asyncpg.Connection, publish: Any, svc: str
) -> None:
    start = datetime(2030, 12, 20, tzinfo=UTC)
    freeze = FreezeScheduled(
        freeze_id=str(uuid.uuid4()),
        name="Year end",
        start=start,
        end=start + timedelta(days=14),
        environments=["production"],
        services=[],
        reason="holidays",
        scheduled_at=NOW,
    )
    await publish(freeze)
    await rows(db, "SELECT count(*) FROM change.freezes WHERE freeze_id = $1", freeze.freeze_id)

    inside = await create(
        client,
        service=svc,
        environment="production",
        planned_start="2030-12-24T09:00:00Z",
        planned_end="2030-12-24T10:00:00Z",
    )
    assert any(f["code"] == "PLANNED_IN_FREEZE" and "Year end" in f["detail"] for f in inside["risk"]["factors"])
    outside = await create(
        client,
        service=svc,
        environment="staging",
        planned_start="2030-12-24T09:30:00Z",
        planned_end="2030-12-24T11:00:00Z",
    )
    assert "PLANNED_IN_FREEZE" not in [f["code"] for f in outside["risk"]["factors"]]

    schedule = (await client.get("/schedule?from=2030-12-01T00:00:00Z&to=2031-01-31T00:00:00Z", headers=ALICE)).json()
    by_id = {i["id"]: i for i in schedule["items"]}
    assert [f["name"] for f in by_id[inside["id"]]["freezes"]] == ["Year end"]
    assert by_id[outside["id"]]["freezes"] == []
    assert freeze.freeze_id in [f["id"] for f in schedule["freezes"]]

    await publish(FreezeLifted(freeze_id=freeze.freeze_id, lifted_at=NOW))
    await rows(
        db, "SELECT count(*) FROM change.freezes WHERE freeze_id = $1 AND lifted_at IS NOT NULL", freeze.freeze_id
    )
    schedule = (await client.get("/schedule?from=2030-12-01T00:00:00Z&to=2031-01-31T00:00:00Z", headers=ALICE)).json()
    assert {i["id"]: i for i in schedule["items"]}[inside["id"]]["freezes"] == []


async def test_deployment_observed_before_its_release_was_known_completes_the_change_when_it_is(
    client: httpx.AsyncClient, db: asyncpg.Connection, publish: Any, svc: str
) -> None:
    """pipeline-svc's and release-svc's topics are consumed independently: the order of arrival must not matter."""
    change = await approved_change(client, service=svc, environment="production", version=None)
    await publish(
        DeploymentObserved(
            service=svc,
            environment="production",
            version="7.0.0",
            outcome="success",
            at=NOW,
            source="argocd",
            source_id="a-1",
        ),
        source="/greenzone/pipeline-svc",
    )
    await rows(db, "SELECT count(*) FROM change.deployments WHERE service = $1", svc)
    assert (await client.get(f"/changes/{change['id']}", headers=ALICE)).json()["state"] == "approved"

    await publish(
        ReleasePlanned(
            release_id=str(uuid.uuid4()),
            name="R",
            version="7.0.0",
            services=[svc],
            changes=[change["id"]],
            state="planned",
            planned_at=NOW,
        )
    )
    done = await until(client, change["id"], lambda c: c["state"] == "completed")
    assert done["outcome"] == "successful"
