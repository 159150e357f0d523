"""change-svc's and pipeline-svc's events, published to the broker, land in release-svc's projections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from greenzone_common.contracts.change import (
    ChangeApproved,
    ChangeCompleted,
    ChangeCreated,
    ChangeStarted,
    ChangeSubmitted,
)
from greenzone_common.contracts.common import Commit, FindingsBySeverity, Risk, TestCounts
from greenzone_common.contracts.pipeline import (
    ArtifactPublished,
    CommitsPushed,
    DeploymentObserved,
    IncidentDetected,
    IncidentResolved,
    PipelineRunFinished,
    RollbackObserved,
    ScanReported,
    TestsReported,
)
from greenzone_common.testing.helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("consumers_ready")]

Publish = Callable[..., Awaitable[str]]
Query = Callable[..., Awaitable[list[asyncpg.Record]]]
NOW = datetime.now(UTC)


async def wait_rows(query: Query, sql: str, *args: Any, count: int = 1) -> list[asyncpg.Record]:
    async def check() -> list[asyncpg.Record] | None:
        rows = await query(sql, *args)
        return rows if len(rows) >= count else None

    return await eventually(check, timeout=30)


async def test_change_states_move_forward_only_and_survive_reordering(publish: Publish, query: Query, svc: str) -> None:
    c1 = f"c-{svc}"
    common: dict[str, Any] = {"number": "CHG-000007", "type": "normal", "service": svc, "environment": "prod"}
    approved = ChangeApproved(change_id=c1, **common, required_approvals=1, version="1.4.2", approved_at=NOW)
    created = ChangeCreated(
        change_id=c1,
        **common,
        title="Raise pool",
        requested_by="alice",
        version="1.4.2",
        planned_start=NOW,
        planned_end=NOW + timedelta(hours=1),
        risk=Risk(score=10, level="low"),
        created_at=NOW,
    )
    submitted = ChangeSubmitted(
        change_id=c1,
        **common,
        required_approvals=1,
        state="awaiting_approval",
        submitted_by="alice",
        submitted_at=NOW,
    )
    # approved arrives first, then the older created/submitted: the state stays approved, details are filled in
    await publish(approved)
    await wait_rows(query, "SELECT 1 FROM release.changes WHERE change_id = $1 AND state = 'approved'", c1)
    duplicate = await publish(created)
    await publish(created, event_id=duplicate)  # redelivered: applied once
    await publish(submitted)
    [row] = await wait_rows(query, "SELECT * FROM release.changes WHERE change_id = $1 AND title IS NOT NULL", c1)
    await wait_rows(query, "SELECT 1 FROM release.inbox WHERE ce_type = $1", submitted.event_type)
    [row] = await query("SELECT * FROM release.changes WHERE change_id = $1", c1)
    assert (row["state"], row["environment"], row["version"], row["title"]) == (
        "approved",
        "production",
        "1.4.2",
        "Raise pool",
    )
    assert row["planned_start"] is not None

    await publish(ChangeStarted(change_id=c1, **common, started_at=NOW))
    await publish(ChangeCompleted(change_id=c1, **common, outcome="successful", completed_at=NOW))
    await wait_rows(query, "SELECT 1 FROM release.changes WHERE change_id = $1 AND state = 'completed'", c1)


async def test_evidence_deployments_rollbacks_and_incidents_are_projected(
    publish: Publish, query: Query, svc: str
) -> None:
    await publish(
        TestsReported(
            service=svc,
            version="1.4.2",
            suite="unit",
            counts=TestCounts(passed=10, failed=1),
            outcome="failure",
            reported_at=NOW,
        )
    )
    await publish(
        ScanReported(service=svc, version="1.4.2", tool="trivy", findings=FindingsBySeverity(high=2), reported_at=NOW)
    )
    await publish(
        DeploymentObserved(
            service=svc,
            environment="prd",
            version="1.4.2",
            commit="abc",
            outcome="success",
            at=NOW,
            source="github",
            source_id=f"dep-{svc}",
        )
    )
    # the same deployment again with a later status: one row, latest outcome
    await publish(
        DeploymentObserved(
            service=svc,
            environment="prd",
            version="1.4.2",
            commit="abc",
            outcome="failure",
            at=NOW + timedelta(minutes=1),
            source="github",
            source_id=f"dep-{svc}",
        )
    )
    await publish(RollbackObserved(service=svc, environment="production", version="1.4.1", at=NOW, source="cdevents"))
    await publish(
        IncidentDetected(incident_id=f"inc-{svc}", service=svc, environment="production", severity="critical", at=NOW)
    )
    await publish(
        IncidentResolved(incident_id=f"inc-{svc}", service=svc, environment="production", at=NOW + timedelta(hours=1))
    )

    [test] = await wait_rows(query, "SELECT * FROM release.test_reports WHERE service = $1", svc)
    assert (test["version"], test["suite"], test["outcome"], test["failed"]) == (
        "1.4.2",
        "unit",
        "failure",
        1,
    )
    [scan] = await wait_rows(query, "SELECT * FROM release.scan_reports WHERE service = $1", svc)
    assert (scan["tool"], scan["high"], scan["critical"]) == ("trivy", 2, 0)
    [dep] = await wait_rows(query, "SELECT * FROM release.deployments WHERE outcome = 'failure' AND service = $1", svc)
    assert (dep["environment"], dep["source"], dep["source_id"]) == ("production", "github", f"dep-{svc}")
    assert len(await query("SELECT 1 FROM release.deployments WHERE service = $1", svc)) == 1
    [rb] = await wait_rows(query, "SELECT * FROM release.rollbacks WHERE service = $1", svc)
    assert (rb["environment"], rb["version"]) == ("production", "1.4.1")
    [inc] = await wait_rows(
        query, "SELECT * FROM release.incidents WHERE resolved_at IS NOT NULL AND service = $1", svc
    )
    assert inc["detected_at"] is not None and inc["severity"] == "critical"


async def test_unknown_repositories_and_artifacts_become_services(
    publish: Publish, query: Query, outbox_events: Callable[[str], Awaitable[list[dict[str, Any]]]], svc: str
) -> None:
    repo = f"octo-org/{svc}"
    await publish(
        PipelineRunFinished(
            service=svc,
            pipeline="ci",
            run_id="1",
            outcome="success",
            finished_at=NOW,
            repository=repo,
            source="github",
        )
    )
    await publish(
        CommitsPushed(
            service=svc,
            repository=repo,
            branch="main",
            commits=[Commit(sha="a" * 40, timestamp=NOW)],
            pushed_at=NOW,
            source="github",
        )
    )
    await publish(ArtifactPublished(service=svc, name=f"{svc}-worker", version="2.0.0", published_at=NOW))
    [service] = await wait_rows(
        query, "SELECT * FROM release.services WHERE artifacts != '[]'::jsonb AND name = $1", svc
    )
    assert service["auto_registered"] is True
    await wait_rows(query, "SELECT 1 FROM release.inbox WHERE ce_type = $1", CommitsPushed.event_type)
    [row] = await query(
        "SELECT repositories::text AS repos, artifacts::text AS arts FROM release.services WHERE name = $1", svc
    )
    assert (row["repos"], row["arts"]) == (f'["{repo}"]', f'["{svc}-worker"]')  # the repeat changed nothing
    events = [e for e in await outbox_events("dev.greenzone.service.registered.v1") if e["name"] == svc]
    assert [(e["name"], e["repositories"], e["artifacts"], e["auto_registered"]) for e in events] == [
        (svc, [repo], [], True),
        (svc, [repo], [f"{svc}-worker"], True),
    ]
