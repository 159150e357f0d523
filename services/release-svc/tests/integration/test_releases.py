"""Releases over HTTP: states, changes, dependencies, gated deployments, rollbacks, early life support, closure."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from greenzone_common.contracts.change import ChangeApproved
from greenzone_common.contracts.pipeline import (
    DeploymentObserved,
    IncidentDetected,
    IncidentResolved,
    RollbackObserved,
)
from greenzone_common.testing.helpers import bearer, eventually, running
from release_svc.config import Settings
from release_svc.main import create_app
from release_svc.notifications.service import SIGNATURE_HEADER, verify

pytestmark = [pytest.mark.integration]

Publish = Callable[..., Awaitable[str]]
Query = Callable[..., Awaitable[list[asyncpg.Record]]]
Events = Callable[[str], Awaitable[list[dict[str, Any]]]]
RM = bearer("rita", "release_manager")
VIEWER = bearer("vic", "viewer")


def release_body(svc: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Payments Q1",
        "version": "1.4.2",
        "services": [svc],
        "changes": [],
        "milestones": {"build": "2026-03-01T09:00:00Z", "deploy": "2026-03-02T09:00:00Z"},
        "notify": [],
        "depends_on": [],
    }
    body.update(overrides)
    return body


async def plan(client: httpx.AsyncClient, svc: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/releases", json=release_body(svc, **overrides), headers=RM)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def approve(publish: Publish, query: Query, svc: str, type: str = "normal") -> str:
    change_id = f"chg-{uuid.uuid4().hex[:8]}"
    await publish(
        ChangeApproved(
            change_id=change_id,
            number="CHG-000001",
            type=type,
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


async def deploy(client: httpx.AsyncClient, release_id: str, environment: str, **body: Any) -> httpx.Response:
    return await client.post(
        f"/releases/{release_id}/deployments", json={"environment": environment, **body}, headers=RM
    )


@pytest.mark.usefixtures("consumers_ready")
async def test_release_lifecycle_from_plan_to_closure(
    client: httpx.AsyncClient, svc: str, publish: Publish, query: Query, outbox_events: Events, receiver: Any
) -> None:
    release = await plan(client, svc, notify=[receiver.url])
    assert release["state"] == "planned" and release["notify_secret"]
    rid = release["id"]
    [planned] = await outbox_events("dev.greenzone.release.planned.v1")
    assert (planned["release_id"], planned["services"], planned["state"]) == (rid, [svc], "planned")

    staging = await deploy(client, rid, "staging", commit="abc")
    assert staging.status_code == 201, staging.text
    assert staging.json()["release"]["state"] == "in_progress"
    assert [d["environment"] for d in staging.json()["deployments"]] == ["staging"]

    # production without an approved change: 409 with the gate's decision, nothing deployed
    denied = await deploy(client, rid, "prod")
    assert denied.status_code == 409
    problem = denied.json()
    assert problem["type"].endswith("/gate-denied")
    assert problem["decision"]["decision"] == "deny"
    assert [r["code"] for r in problem["decision"]["reasons"]] == ["NO_APPROVED_CHANGE"]
    assert problem["decision"]["change_id"]
    got = (await client.get(f"/releases/{rid}", headers=VIEWER)).json()
    assert got["state"] == "in_progress" and len(got["deployments"]) == 1

    change_id = await approve(publish, query, svc)
    added = await client.post(f"/releases/{rid}/changes", json={"change_id": change_id}, headers=RM)
    assert added.status_code == 200 and added.json()["changes"] == [change_id]
    [changed] = await outbox_events("dev.greenzone.release.changed.v1")
    assert changed["added_changes"] == [change_id]

    prod = await deploy(client, rid, "production")
    assert prod.status_code == 201, prod.text
    result = prod.json()
    assert result["release"]["state"] == "early_life_support"
    assert [d["decision"] for d in result["decisions"]] == ["allow"]
    started = datetime.fromisoformat(result["release"]["els_started_at"])
    ends = datetime.fromisoformat(result["release"]["els_ends_at"])
    assert ends - started == timedelta(days=7)
    deployed = await outbox_events("dev.greenzone.release.deployed.v1")
    assert [(e["environment"], e["outcome"], e["production"]) for e in deployed] == [
        ("staging", "success", False),
        ("production", "success", True),
    ]
    assert (
        deployed[-1]["changes"] == [change_id] and deployed[-1]["decision_id"] == result["decisions"][0]["decision_id"]
    )
    [els] = await outbox_events("dev.greenzone.release.els.started.v1")
    assert els["ends_at"] == result["release"]["els_ends_at"].replace("+00:00", "Z")
    requested = await outbox_events("dev.greenzone.release.deployment.requested.v1")
    assert [e["environment"] for e in requested] == ["staging", "production"]

    rolled = await client.post(
        f"/releases/{rid}/rollback", json={"environment": "production", "reason": "5xx"}, headers=RM
    )
    assert rolled.status_code == 200 and rolled.json()["state"] == "in_progress"
    assert [r["reason"] for r in rolled.json()["rollbacks"]] == ["5xx"]
    [rb] = await outbox_events("dev.greenzone.release.rolledback.v1")
    assert (rb["environment"], rb["reason"]) == ("production", "5xx")
    assert (await client.post(f"/releases/{rid}/close", headers=RM)).status_code == 409  # not live any more

    assert (await deploy(client, rid, "production")).status_code == 201
    closed = await client.post(f"/releases/{rid}/close", headers=RM)
    assert closed.status_code == 200
    assert (closed.json()["state"], closed.json()["closed_by"]) == ("closed", "rita")
    [event] = await outbox_events("dev.greenzone.release.closed.v1")
    assert (event["release_id"], event["closed_by"]) == (rid, "rita")
    assert (await deploy(client, rid, "staging")).status_code == 409
    assert (await client.post(f"/releases/{rid}/close", headers=RM)).status_code == 409

    async def told_closed() -> bool:
        return "release.closed" in receiver.kinds()

    await eventually(told_closed, timeout=20)
    assert receiver.kinds() == [
        "release.planned",
        "release.deployed",
        "release.changed",
        "release.deployed",
        "release.rolledback",
        "release.deployed",
        "release.closed",
    ]
    headers, raw, _ = receiver.received[-1]
    assert verify(release["notify_secret"], raw, headers[SIGNATURE_HEADER.lower()])


async def test_failed_deployment_is_recorded_and_does_not_start_early_life_support(
    client: httpx.AsyncClient, svc: str, outbox_events: Events
) -> None:
    rid = (await plan(client, svc))["id"]
    failed = await deploy(client, rid, "staging", outcome="failure")
    assert failed.status_code == 201
    assert failed.json()["deployments"][0]["outcome"] == "failure"
    [event] = await outbox_events("dev.greenzone.release.deployed.v1")
    assert event["outcome"] == "failure"
    assert (await client.get(f"/releases/{rid}", headers=VIEWER)).json()["state"] == "in_progress"


async def test_release_cannot_reach_production_before_its_dependencies(client: httpx.AsyncClient, svc: str) -> None:
    base = await plan(client, svc, name="Base")
    dependent = await plan(client, svc, name="Dependent", version="1.5.0", depends_on=[base["id"]])
    assert dependent["depends_on"] == [base["id"]]
    blocked = await deploy(client, dependent["id"], "production")
    assert blocked.status_code == 409
    assert blocked.json()["type"].endswith("/release-dependency")
    assert base["id"] in blocked.json()["detail"]
    assert (await deploy(client, dependent["id"], "staging")).status_code == 201  # only production waits
    unknown = await client.post("/releases", json=release_body(svc, depends_on=["nope"]), headers=RM)
    assert unknown.status_code == 422


@pytest.mark.usefixtures("consumers_ready")
async def test_observed_deployment_naming_a_bundled_change_moves_its_release(
    client: httpx.AsyncClient, svc: str, publish: Publish
) -> None:
    change_id = f"chg-{svc}"
    rid = (await plan(client, svc, version="2.0.0", changes=[change_id]))["id"]
    await publish(
        DeploymentObserved(
            service=svc,
            environment="staging",
            version="2.0.0-rc1",
            outcome="success",
            at=datetime.now(UTC),
            source="gitlab",
            source_id=f"gl-{svc}",
            change_id=change_id,
        )
    )

    async def moved() -> dict[str, Any] | None:
        got: dict[str, Any] = (await client.get(f"/releases/{rid}", headers=VIEWER)).json()
        return got if got["state"] == "in_progress" else None

    release = await eventually(moved, timeout=30)
    assert [(d["environment"], d["source"]) for d in release["deployments"]] == [("staging", "gitlab")]


async def test_cancel_and_validation_and_roles(client: httpx.AsyncClient, svc: str, outbox_events: Events) -> None:
    rid = (await plan(client, svc))["id"]
    cancelled = await client.post(f"/releases/{rid}/cancel", json={"reason": "descoped"}, headers=RM)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    [event] = await outbox_events("dev.greenzone.release.cancelled.v1")
    assert event["reason"] == "descoped"
    assert (await client.post(f"/releases/{rid}/cancel", headers=RM)).status_code == 409
    assert (await deploy(client, rid, "staging")).status_code == 409
    assert (await client.get("/releases/nope", headers=VIEWER)).status_code == 404
    assert (await client.post("/releases", json=release_body(svc), headers=VIEWER)).status_code == 403
    assert (await client.post("/releases", json=release_body(svc, services=[]), headers=RM)).status_code == 422
    assert (await client.post("/releases", json=release_body(svc, notify=["not a url"]), headers=RM)).status_code == 422
    assert (await deploy(client, rid, "moon")).status_code == 422
    listed = await client.get("/releases?state=cancelled", headers=VIEWER)
    assert [r["id"] for r in listed.json()["items"]] == [rid]


async def test_reschedule_changes_milestones(client: httpx.AsyncClient, svc: str, outbox_events: Events) -> None:
    rid = (await plan(client, svc))["id"]
    moved = await client.patch(f"/releases/{rid}", json={"milestones": {"deploy": "2026-03-09T09:00:00Z"}}, headers=RM)
    assert moved.status_code == 200
    assert moved.json()["milestones"]["deploy"] == "2026-03-09T09:00:00Z"
    assert moved.json()["milestones"]["build"] == "2026-03-01T09:00:00Z"
    [event] = await outbox_events("dev.greenzone.release.changed.v1")
    assert event["milestones"]["deploy"] == "2026-03-09T09:00:00Z"


@pytest.mark.usefixtures("consumers_ready")
async def test_observed_deployment_matching_the_version_moves_the_release(
    client: httpx.AsyncClient, svc: str, publish: Publish, outbox_events: Events
) -> None:
    rid = (await plan(client, svc))["id"]
    await publish(
        DeploymentObserved(
            service=svc,
            environment="prd",
            version="1.4.2",
            commit="abc",
            outcome="success",
            at=datetime.now(UTC),
            source="github",
            source_id=f"gh-{svc}",
        )
    )

    async def in_els() -> dict[str, Any] | None:
        got: dict[str, Any] = (await client.get(f"/releases/{rid}", headers=VIEWER)).json()
        return got if got["state"] == "early_life_support" else None

    release = await eventually(in_els, timeout=30)
    assert [(d["environment"], d["source"]) for d in release["deployments"]] == [("production", "github")]
    [event] = await outbox_events("dev.greenzone.release.deployed.v1")
    assert (event["source"], event["environment"], event["deployed_by"]) == ("github", "production", None)

    # the tool then reports a rollback to the previous version: the live release is the one rolled back
    await publish(
        RollbackObserved(
            service=svc, environment="production", version="1.4.1", at=datetime.now(UTC), source="cdevents"
        )
    )

    async def rolled_back() -> dict[str, Any] | None:
        got: dict[str, Any] = (await client.get(f"/releases/{rid}", headers=VIEWER)).json()
        return got if got["state"] == "in_progress" else None

    release = await eventually(rolled_back, timeout=30)
    assert [(r["environment"], r["source"]) for r in release["rollbacks"]] == [("production", "cdevents")]
    [rb] = await outbox_events("dev.greenzone.release.rolledback.v1")
    assert rb["rolled_back_by"] is None


async def test_early_life_support_ends_by_itself_once_no_linked_incident_is_open(
    settings_for: Callable[..., Any], svc: str, publish: Publish, query: Query
) -> None:
    settings = settings_for(
        Settings,
        consumer_group_suffix=f".t{uuid.uuid4().hex[:8]}",
        els_period=timedelta(seconds=2),
        els_check_interval=0.2,
    )
    app = create_app(settings)
    async with running(app) as client:
        for runner in app.state.runtime.consumers:
            await runner.ready.wait()
        rid = (await plan(client, svc))["id"]
        assert (await deploy(client, rid, "staging")).status_code == 201
        await approve(publish, query, svc)
        assert (await deploy(client, rid, "production")).status_code == 201
        incident = f"inc-{svc}"
        await publish(
            IncidentDetected(
                incident_id=incident, service=svc, environment="production", severity="high", at=datetime.now(UTC)
            )
        )

        async def state() -> str:
            got: dict[str, Any] = (await client.get(f"/releases/{rid}", headers=VIEWER)).json()
            return str(got["state"])

        async def incident_seen() -> bool:
            return bool(await query("SELECT 1 FROM release.incidents WHERE incident_id = $1", incident))

        await eventually(incident_seen, timeout=30)
        await asyncio.sleep(3.0)  # the period is over; several checks have run
        assert await state() == "early_life_support"  # over, but an incident is open

        await publish(
            IncidentResolved(incident_id=incident, service=svc, environment="production", at=datetime.now(UTC))
        )

        async def closed() -> dict[str, Any] | None:
            got: dict[str, Any] = (await client.get(f"/releases/{rid}", headers=VIEWER)).json()
            return got if got["state"] == "closed" else None

        release = await eventually(closed, timeout=30)
        assert release["closed_by"] is None
        [row] = await query("SELECT data FROM release.outbox WHERE type = 'dev.greenzone.release.closed.v1'")
        assert '"closed_by": null' in row["data"] or '"closed_by":null' in row["data"]
        # the audit trail names the background task that closed it, not a person
        history = (await client.get(f"/releases/{rid}/history", headers=VIEWER)).json()["items"]
        closure = history[-1]
        assert (closure["action"], closure["actor"], closure["via"]) == ("closed", None, "system")
        assert closure["system"] == "release-svc:early-life-support"
        assert (closure["before"]["state"], closure["after"]["state"]) == ("early_life_support", "closed")


async def test_release_list_filters_and_pages(client: httpx.AsyncClient, svc: str) -> None:
    ids = [(await plan(client, svc, name=f"R{i}"))["id"] for i in range(3)]
    await plan(client, f"{svc}-other")
    first = (await client.get("/releases", params={"service": svc, "limit": 2}, headers=VIEWER)).json()
    second = (
        await client.get(
            "/releases", params={"service": svc, "limit": 2, "cursor": first["next_cursor"]}, headers=VIEWER
        )
    ).json()
    assert [r["id"] for r in first["items"] + second["items"]] == list(reversed(ids))  # newest first
    assert second["next_cursor"] is None
