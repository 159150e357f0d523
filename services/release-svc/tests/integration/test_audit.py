"""The audit trail over HTTP: every mutation recorded in its own transaction — who, when, what, from which request
or event, before and after — readable at ``GET /releases/{id}/history`` and ``GET /audit``, append-only."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from greenzone_common.auth import ROLES
from greenzone_common.contracts.change import ChangeApproved
from greenzone_common.contracts.pipeline import DeploymentObserved
from greenzone_common.testing.helpers import bearer, eventually

pytestmark = [pytest.mark.integration]

Publish = Callable[..., Awaitable[str]]
Query = Callable[..., Awaitable[list[asyncpg.Record]]]
RM = bearer("rita", "release_manager")
ADMIN = bearer("ada", "admin")
VIEWER = bearer("vic", "viewer")
PIPELINE = bearer("github-actions", "pipeline")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def as_rm(**headers: str) -> dict[str, str]:
    return {**RM, **headers}


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()) if response.content else {}


async def history(client: httpx.AsyncClient, release_id: str) -> list[dict[str, Any]]:
    return list((await ok(await client.get(f"/releases/{release_id}/history", headers=VIEWER)))["items"])


async def audit(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    return list((await ok(await client.get("/audit", params=params, headers=RM)))["items"])


async def approved_change(publish: Publish, query: Query, svc: str) -> str:
    change_id = f"chg-{uuid.uuid4().hex[:8]}"
    await publish(
        ChangeApproved(
            change_id=change_id,
            number="CHG-000001",
            type="normal",
            service=svc,
            environment="production",
            required_approvals=1,
            version="1.4.2",
            approved_at=datetime.now(UTC),
        )
    )

    async def seen() -> bool:
        return bool(await query("SELECT 1 FROM release.changes WHERE change_id = $1", change_id))

    await eventually(seen, timeout=30)
    return change_id


@pytest.mark.usefixtures("consumers_ready")
async def test_release_history_records_every_mutation_with_who_when_and_which_request(
    client: httpx.AsyncClient, svc: str, publish: Publish, query: Query
) -> None:
    body = {"name": "Payments Q1", "version": "1.4.2", "services": [svc]}
    created = await ok(
        await client.post(
            "/releases",
            json=body,
            headers=as_rm(**{"X-Request-Id": "req-plan-1", "traceparent": TRACEPARENT, "Idempotency-Key": "k-1"}),
        ),
        201,
    )
    rid = created["id"]
    await ok(
        await client.patch(f"/releases/{rid}", json={"milestones": {"deploy": "2026-04-01T09:00:00Z"}}, headers=RM)
    )
    await ok(await client.post(f"/releases/{rid}/deployments", json={"environment": "staging"}, headers=RM), 201)
    await ok(
        await client.post(f"/releases/{rid}/rollback", json={"environment": "staging", "reason": "bad"}, headers=RM)
    )
    denied = await client.post(f"/releases/{rid}/deployments", json={"environment": "production"}, headers=RM)
    assert denied.status_code == 409  # no approved change yet: the gate's decision is recorded, nothing deployed
    change_id = await approved_change(publish, query, svc)
    await ok(await client.post(f"/releases/{rid}/changes", json={"change_id": change_id}, headers=RM))
    await ok(await client.post(f"/releases/{rid}/changes", json={"change_id": change_id}, headers=RM))  # no-op
    prod = await ok(
        await client.post(
            f"/releases/{rid}/deployments", json={"environment": "production"}, headers=as_rm(**{"X-Request-Id": "r-9"})
        ),
        201,
    )
    await ok(await client.post(f"/releases/{rid}/close", headers=ADMIN))

    entries = await history(client, rid)
    assert [e["action"] for e in entries] == [
        "planned",
        "rescheduled",
        "deployed",
        "rolled_back",
        "change_added",  # once: adding it again changed nothing
        "deployed",
        "closed",
    ]
    assert all(e["entity"] == "release" and e["entity_id"] == rid and e["via"] == "request" for e in entries)
    assert [e["actor"] for e in entries] == ["rita"] * 6 + ["ada"]
    planned = entries[0]
    assert (planned["request_id"], planned["idempotency_key"], planned["method"], planned["path"]) == (
        "req-plan-1",
        "k-1",
        "POST",
        "/releases",
    )
    assert planned["traceparent"] == TRACEPARENT
    assert planned["trace_id"] == TRACE_ID  # the request's span continues the caller's trace
    assert planned["before"] is None
    assert (planned["after"]["state"], planned["after"]["created_by"]) == ("planned", "rita")
    assert "notify_secret" not in planned["after"]  # the signing key never enters the trail
    assert all(e["request_id"] for e in entries)  # a request without X-Request-Id is given one
    assert len({e["request_id"] for e in entries}) == len(entries)
    assert datetime.fromisoformat(planned["at"]) <= datetime.fromisoformat(entries[-1]["at"])

    rescheduled = entries[1]
    assert rescheduled["before"]["milestones"].get("deploy") is None
    assert rescheduled["after"]["milestones"]["deploy"].startswith("2026-04-01T09:00:00")
    staging, rolled_back, added, production, closed = entries[2:]
    assert (staging["before"]["state"], staging["after"]["state"]) == ("planned", "in_progress")
    assert staging["details"]["environment"] == "staging" and staging["details"]["outcome"] == "success"
    assert rolled_back["details"]["reason"] == "bad"
    assert (added["before"]["changes"], added["after"]["changes"], added["details"]["change_id"]) == (
        [],
        [change_id],
        change_id,
    )
    assert production["request_id"] == "r-9"
    assert (production["before"]["state"], production["after"]["state"]) == ("in_progress", "early_life_support")
    assert production["details"]["early_life_support_started"] is True
    assert production["details"]["decisions"] == [d["decision_id"] for d in prod["decisions"]]
    assert production["details"]["deployments"] == [d["id"] for d in prod["deployments"]]
    assert (closed["before"]["state"], closed["after"]["state"], closed["after"]["closed_by"]) == (
        "early_life_support",
        "closed",
        "ada",
    )

    # every gate decision taken for the release's deployments is in the trail too, the denial included
    denied_id = denied.json()["decision"]["decision_id"]
    [denial] = await audit(client, entity="gate_decision", id=denied_id)
    assert (denial["action"], denial["actor"], denial["after"]["decision"]) == ("evaluated", "rita", "deny")
    assert [r["code"] for r in denial["after"]["reasons"]] == ["NO_APPROVED_CHANGE"]
    [allowed] = await audit(client, entity="gate_decision", id=prod["decisions"][0]["decision_id"])
    assert (allowed["after"]["decision"], allowed["request_id"]) == ("allow", "r-9")


async def test_gate_evaluation_is_recorded_with_the_pipelines_request(client: httpx.AsyncClient, svc: str) -> None:
    decision = await ok(
        await client.post(
            "/gates/evaluate",
            json={"service": svc, "environment": "production", "version": "9.9.9"},
            headers={**PIPELINE, "X-Request-Id": "ci-run-77"},
        )
    )
    [entry] = await audit(client, entity="gate_decision", id=decision["decision_id"])
    assert (entry["actor"], entry["request_id"], entry["path"]) == ("github-actions", "ci-run-77", "/gates/evaluate")
    assert entry["before"] is None
    assert entry["after"]["decision"] == "deny"
    assert entry["after"]["change_id"] == decision["change_id"]  # the change it asked change-svc to draft


async def test_catalogue_environments_windows_and_freezes_are_recorded_with_before_and_after(
    client: httpx.AsyncClient, svc: str
) -> None:
    service = {"name": svc, "repositories": [f"octo/{svc}"], "artifacts": [], "team": "payments"}
    await ok(await client.post("/services", json=service, headers=RM), 201)
    await ok(await client.post("/services", json={**service, "team": "platform"}, headers=ADMIN))
    registered, redefined = await audit(client, entity="service", id=svc)
    assert (registered["action"], registered["actor"], registered["before"]) == ("registered", "rita", None)
    assert (redefined["action"], redefined["actor"]) == ("redefined", "ada")
    assert (redefined["before"]["team"], redefined["after"]["team"]) == ("payments", "platform")

    env = f"qa-{uuid.uuid4().hex[:6]}"
    await ok(await client.post("/environments", json={"name": env, "rank": 25}, headers=RM), 201)
    await ok(await client.post("/environments", json={"name": env, "rank": 26, "protected": True}, headers=RM))
    defined, changed = await audit(client, entity="environment", id=env)
    assert (defined["action"], changed["action"]) == ("defined", "redefined")
    assert (changed["before"]["rank"], changed["after"]["rank"], changed["after"]["protected"]) == (25, 26, True)

    window = await ok(
        await client.post(
            "/windows",
            json={"environment": env, "days": ["mon"], "start": "09:00", "end": "12:00", "timezone": "Europe/London"},
            headers=RM,
        ),
        201,
    )
    assert (await client.delete(f"/windows/{window['id']}", headers=RM)).status_code == 204
    opened, removed = await audit(client, entity="window", id=window["id"])
    assert (opened["action"], opened["after"]["timezone"]) == ("defined", "Europe/London")
    assert (removed["action"], removed["method"], removed["after"]) == ("removed", "DELETE", None)
    assert removed["before"]["environment"] == env

    now = datetime.now(UTC)
    freeze = {
        "name": "Peak",
        "start": now.isoformat(),
        "end": (now + timedelta(days=1)).isoformat(),
        "environments": [env],
        "reason": "sales",
    }
    frozen = await ok(await client.post("/freezes", json=freeze, headers=RM), 201)
    assert (await client.delete(f"/freezes/{frozen['id']}", headers=ADMIN)).status_code == 204
    scheduled, lifted = await audit(client, entity="freeze", id=frozen["id"])
    assert (scheduled["action"], scheduled["actor"], scheduled["after"]["reason"]) == ("scheduled", "rita", "sales")
    assert (lifted["action"], lifted["actor"], lifted["before"]["lifted_at"]) == ("lifted", "ada", None)
    assert lifted["after"]["lifted_by"] == "ada" and lifted["after"]["lifted_at"]

    by_ada = await audit(client, actor="ada")
    assert {(e["entity"], e["action"]) for e in by_ada} == {("service", "redefined"), ("freeze", "lifted")}


async def test_audit_log_is_paginated_with_the_common_cursor(client: httpx.AsyncClient, svc: str) -> None:
    for n in range(5):
        await ok(await client.post("/services", json={"name": f"{svc}-{n}"}, headers=RM), 201)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"entity": "service", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await ok(await client.get("/audit", params=params, headers=RM))
        seen += [e["entity_id"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"{svc}-{n}" for n in range(5)]  # oldest first, each once
    assert pages == 3
    bad = await client.get("/audit", params={"cursor": "not-a-cursor"}, headers=RM)
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    unknown = await client.get("/audit", params={"entity": "spaceship"}, headers=RM)
    assert unknown.status_code == 422


@pytest.mark.usefixtures("consumers_ready")
async def test_observed_deployment_is_recorded_as_the_event_that_caused_it(
    client: httpx.AsyncClient, svc: str, publish: Publish
) -> None:
    rid = (
        await ok(
            await client.post("/releases", json={"name": "R", "version": "7.0.0", "services": [svc]}, headers=RM), 201
        )
    )["id"]
    ce_id = await publish(
        DeploymentObserved(
            service=svc,
            environment="staging",
            version="7.0.0",
            commit=None,
            outcome="success",
            at=datetime.now(UTC),
            source="github",
            source_id=f"gh-{uuid.uuid4().hex[:8]}",
        ),
        source="/greenzone/pipeline-svc",
    )

    async def deployed() -> list[dict[str, Any]] | None:
        entries = await history(client, rid)
        return entries if len(entries) == 2 else None

    planned, observed = await eventually(deployed, timeout=30)
    assert planned["via"] == "request"
    assert (observed["action"], observed["via"], observed["actor"]) == ("deployed", "event", None)
    assert (observed["event_id"], observed["event_type"]) == (ce_id, DeploymentObserved.event_type)
    assert (observed["request_id"], observed["method"]) == (None, None)
    assert observed["details"]["source"] == "github"
    assert (observed["before"]["state"], observed["after"]["state"]) == ("planned", "in_progress")


async def test_refused_mutations_leave_no_trace(client: httpx.AsyncClient, svc: str, query: Query) -> None:
    rid = (
        await ok(
            await client.post("/releases", json={"name": "R", "version": "1.0.0", "services": [svc]}, headers=RM), 201
        )
    )["id"]
    await ok(await client.post(f"/releases/{rid}/cancel", json={"reason": "scope cut"}, headers=RM))
    assert (await client.post(f"/releases/{rid}/cancel", json={}, headers=RM)).status_code == 409
    assert (await client.post(f"/releases/{rid}/close", headers=RM)).status_code == 409
    unknown = {"name": "R", "version": "1.0.0", "services": [svc], "depends_on": ["no-such-release"]}
    assert (await client.post("/releases", json=unknown, headers=RM)).status_code == 422
    assert (await client.post("/releases", json={"name": "R"}, headers=VIEWER)).status_code == 403

    assert [e["action"] for e in await history(client, rid)] == ["planned", "cancelled"]
    cancelled = (await history(client, rid))[-1]
    assert cancelled["details"] == {"reason": "scope cut"}
    rows = await query("SELECT count(*) AS n FROM release.audit_log WHERE entity = 'release'")
    assert rows[0]["n"] == 2


async def test_the_trail_is_append_only(client: httpx.AsyncClient, svc: str, database_url: str) -> None:
    await ok(await client.post("/services", json={"name": svc}, headers=RM), 201)
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE release.audit_log SET actor = 'mallory' WHERE entity_id = $1", svc)
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM release.audit_log WHERE entity_id = $1", svc)
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("TRUNCATE release.audit_log")
        assert await conn.fetchval("SELECT actor FROM release.audit_log WHERE entity_id = $1", svc) == "rita"
    finally:
        await conn.close()


async def test_who_may_read_the_trail(client: httpx.AsyncClient, svc: str) -> None:
    """Role x endpoint for the audit reads: the whole trail is for release managers and admins; a release's own
    history, like the release, is for every authenticated role."""
    rid = (
        await ok(
            await client.post("/releases", json={"name": "R", "version": "1.0.0", "services": [svc]}, headers=RM), 201
        )
    )["id"]
    endpoints = {"/audit": {"release_manager", "admin"}, f"/releases/{rid}/history": set(ROLES)}
    for path, admitted in endpoints.items():
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers={"Authorization": "Bearer not-a-jwt"})).status_code == 401
        for role in ROLES:
            response = await client.get(path, headers=bearer(f"user-{role}", role))
            expected = 200 if role in admitted else 403
            assert response.status_code == expected, (path, role, response.text)
            if expected == 200:
                assert response.json()["items"], (path, role)
    missing = await client.get(f"/releases/{uuid.uuid4()}/history", headers=VIEWER)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
