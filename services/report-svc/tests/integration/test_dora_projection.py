"""Events from the broker into the facts and out as /dora and the release report, with hand-computed figures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from greenzone_common.contracts import REPORT_TOPIC
from greenzone_common.contracts import change as ch
from greenzone_common.contracts import pipeline as pl
from greenzone_common.contracts import release as rl
from greenzone_common.contracts.report import ReleaseReportPublished
from greenzone_common.testing.helpers import bearer, eventually
from report_svc.config import Settings

from .conftest import VIEWER, Sent, publish, sent

pytestmark = pytest.mark.integration

T = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T + timedelta(hours=hours)


def observed(service: str, sha: str | None, hours: float, outcome: str = "success", **kw: Any) -> pl.DeploymentObserved:
    return pl.DeploymentObserved(
        service=service,
        environment=kw.pop("environment", "production"),
        commit=sha,
        outcome=outcome,
        at=at(hours),
        source=kw.pop("source", "github"),
        source_id=kw.pop("source_id", f"{sha}-{hours}"),
        **kw,
    )


def change_events(change_id: str, service: str, outcome: str, release_id: str) -> list[ch.ChangeEventData]:
    base = {"change_id": change_id, "number": f"CHG-{change_id[:6]}", "type": "normal", "service": service}
    base["environment"] = "production"
    return [
        ch.ChangeCreated(
            **base,
            title="t",
            requested_by="alice",
            risk={"score": 10, "level": "low"},
            created_at=at(-48),
            release_id=release_id,
        ),
        ch.ChangeApproved(**base, required_approvals=1, approved_at=at(-24)),
        ch.ChangeCompleted(**base, outcome=outcome, completed_at=at(1.2)),
    ]


def scenario(service: str) -> tuple[list[Sent], str]:
    release_id = str(uuid.uuid4())
    c1, c2 = str(uuid.uuid4()), str(uuid.uuid4())
    rel = {"release_id": release_id, "name": "Payments Q1", "version": "1.0", "services": [service]}
    rel["changes"] = [c1, c2]
    events: list[Any] = [
        rl.ServiceRegistered(name=service, team=f"team-{service}", registered_at=at(-100)),
        rl.ReleasePlanned(**rel, state="planned", milestones={"deploy": at(2)}, planned_at=at(-72)),
        *change_events(c1, service, "successful", release_id),
        *change_events(c2, service, "failed", release_id),
        rl.GateEvaluated(
            decision_id=str(uuid.uuid4()),
            service=service,
            environment="production",
            version="1.0",
            decision="allow",
            evaluated_at=at(0.9),
        ),
        observed(service, "a1", 1),
        rl.ReleaseDeployed(
            **rel, state="deployed", environment="prod", outcome="success", commit="a1", deployed_at=at(1 + 5 / 60)
        ),
        observed(service, "a2", 5, "failure"),
        observed(service, "a3", 6),
        pl.RollbackObserved(service=service, environment="production", at=at(7), source="cdevents", source_id="rb"),
        pl.IncidentDetected(incident_id=f"inc-{service}", service=service, environment="production", at=at(8)),
        pl.IncidentResolved(incident_id=f"inc-{service}", service=service, environment="production", at=at(8.5)),
        observed(service, "a4", 30),
        pl.CommitsPushed(
            service=service,
            repository=f"org/{service}",
            branch="main",
            default_branch="main",
            commits=[{"sha": "c1", "timestamp": at(0)}, {"sha": "c2", "timestamp": at(2)}],
            pushed_at=at(3),
            source="github",
        ),
        pl.CommitsPushed(
            service=service,
            repository=f"org/{service}",
            branch="main",
            default_branch="main",
            commits=[{"sha": "c3", "timestamp": at(20)}],
            pushed_at=at(25),
            source="github",
        ),
        pl.CommitsPushed(  # not the default branch: not a change for lead time
            service=service,
            repository=f"org/{service}",
            branch="feature",
            default_branch="main",
            commits=[{"sha": "f1", "timestamp": at(-500)}],
            pushed_at=at(4),
            source="github",
        ),
        pl.TestsReported(service=service, version="1.0", counts={"passed": 10}, outcome="success", reported_at=at(0.5)),
        pl.ScanReported(service=service, version="1.0", findings={"medium": 2}, reported_at=at(0.5)),
        rl.ReleaseEarlyLifeSupportStarted(
            **rel, state="early_life_support", environment="production", started_at=at(1.1), ends_at=at(1.1 + 168)
        ),
    ]
    closed = rl.ReleaseClosed(**rel, state="closed", closed_at=at(200))
    return [sent(e) for e in events] + [sent(closed)], release_id


async def scenario_projected(dsn: str, service: str, release_id: str) -> bool:
    """Every fact of ``scenario`` but its close is projected. Each is checked: the topics have several partitions,
    and events of different keys (the catalogue entry and gate decision by service, the release's own events by
    release id, a change's by change id) are consumed in no set order."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM report.deployment_reports WHERE service = $1) AS deployments,"
            " (SELECT count(*) FROM report.test_evidence WHERE service = $1) AS tests,"
            " (SELECT count(*) FROM report.scan_evidence WHERE service = $1) AS scans,"
            " (SELECT count(*) FROM report.incidents WHERE service = $1 AND resolved_at IS NOT NULL) AS incidents,"
            " (SELECT count(*) FROM report.change_lifecycle l JOIN report.changes c USING (change_id)"
            "  WHERE c.service = $1 AND l.outcome IS NOT NULL) AS outcomes,"
            " (SELECT count(*) FROM report.releases WHERE release_id = $2 AND els_started_at IS NOT NULL) AS els,"
            " (SELECT count(*) FROM report.gate_decisions WHERE service = $1) AS gates,"
            " (SELECT count(*) FROM report.catalogue_services WHERE name = $1) AS catalogued",
            service,
            release_id,
        )
        assert row is not None
        return tuple(row) == (5, 1, 1, 1, 2, 1, 1, 1)
    finally:
        await conn.close()


async def test_dora_figures_follow_metrics_md_for_a_hand_computed_history(
    report: httpx.AsyncClient, report_settings: Settings
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    events, release_id = scenario(service)
    *facts, closed = events
    await publish(report_settings, facts)
    params = {"service": service, "from": T.isoformat(), "to": (T + timedelta(days=2)).isoformat()}

    async def figures() -> dict[str, Any] | None:
        body = (await report.get("/dora", params=params, headers=VIEWER)).json()
        complete = body["lead_time_for_changes"]["changes"] == 3 and body["time_to_restore"]["incidents"] == 1
        return body if complete and body["change_failure_rate"]["deployments"] == 4 else None

    body = await eventually(figures, timeout=30)
    assert body == {
        "service": service,
        "team": None,
        "environment": "production",
        "from": "2026-03-02T00:00:00Z",
        "to": "2026-03-04T00:00:00Z",
        # a1 (GitHub and release-svc reports merged), a3 and a4; on 2 UTC days; 3 / 2 days
        "deployment_frequency": {"deployments": 3, "deploy_days": 2, "per_day": 1.5, "level": "elite"},
        # c1: 6 h and c2: 4 h (first success after their push at 3 h is a3 at 6 h), c3: 10 h (a4);
        # p90 at rank 1.8: 6 + 0.8 x (10 - 6)
        "lead_time_for_changes": {"median_hours": 6.0, "p90_hours": 9.2, "changes": 3, "level": "elite"},
        # a2 failed; a3 rolled back at 7 h and linked to the incident at 8 h
        "change_failure_rate": {"failed_deployments": 2, "deployments": 4, "rate": 0.5, "level": "low"},
        "time_to_restore": {"median_hours": 0.5, "incidents": 1, "level": "elite"},
        # a2 -> a3: 1 h; a3 -> a4: 24 h
        "failed_deployment_recovery_time": {"median_hours": 12.5, "samples": 2},
        "rework_rate": {"rework_deployments": 0, "deployments": 3, "rate": 0.0},
        "performance_level": "low",
    }

    async def by_team() -> dict[str, Any] | None:
        # the team comes from the catalogue (release topic), consumed apart from the deployments
        team = await report.get("/dora", params={**params, "service": "", "team": f"team-{service}"}, headers=VIEWER)
        assert team.status_code == 200
        figures = team.json()["deployment_frequency"]
        return figures if figures == body["deployment_frequency"] else None

    assert await eventually(by_team, timeout=30) == body["deployment_frequency"]

    # an unknown service: zeros and nulls, not 404
    unknown = await report.get("/dora", params={**params, "service": "nobody"}, headers=VIEWER)
    assert unknown.status_code == 200
    assert unknown.json()["change_failure_rate"] == {
        "failed_deployments": 0,
        "deployments": 0,
        "rate": None,
        "level": None,
    }
    assert (await report.get("/dora")).status_code == 401

    # closing the release generates, stores and announces its report
    consumer = AIOKafkaConsumer(
        REPORT_TOPIC, bootstrap_servers=report_settings.kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    dsn = report_settings.asyncpg_dsn
    await eventually(lambda: scenario_projected(dsn, service, release_id), timeout=30)
    await publish(report_settings, [closed])

    async def stored() -> bool:
        conn = await asyncpg.connect(dsn)
        try:
            return bool(
                await conn.fetchval("SELECT count(*) FROM report.release_reports WHERE release_id = $1", release_id)
            )
        finally:
            await conn.close()

    await eventually(stored, timeout=30)
    response = await report.get(f"/releases/{release_id}/report", headers=VIEWER)
    assert response.status_code == 200
    rep = response.json()
    assert rep["assessment"] == {
        # C = 1/2 (one change failed), everything else 1: round(100 x (0.15 + 0.2 + 0.15 + 0.15 + 0.1 + 0.1)) = 85
        "score": 85,
        "components": {"C": 0.5, "D": 1.0, "G": 1.0, "Q": 1.0, "S": 1.0, "E": 1.0},
    }
    assert len(rep["changes"]["implemented"]) == 1 and len(rep["changes"]["failed"]) == 1
    assert [d["outcome"] for d in rep["deployments"]] == ["success"]
    html = await report.get(f"/releases/{release_id}/report?format=html", headers=VIEWER)
    assert html.headers["content-type"].startswith("text/html") and 'id="score">85<' in html.text
    csv = await report.get(f"/releases/{release_id}/report?format=csv", headers=VIEWER)
    assert csv.headers["content-type"].startswith("text/csv") and "assessment,score,85" in csv.text

    await consumer.start()
    try:

        async def announced() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers)
                    if headers.get("ce_type") == ReleaseReportPublished.event_type.encode() and record.key == (
                        release_id.encode()
                    ):
                        return True
            return False

        await eventually(announced, timeout=30)
    finally:
        await consumer.stop()


async def test_reads_need_a_role_and_an_unknown_release_report_is_404(report: httpx.AsyncClient) -> None:
    response = await report.get("/releases/nope/report", headers=VIEWER)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    for path in ("/dora", "/traceability", "/pipelines/stats", "/maturity", "/platform/health", "/dashboard"):
        assert (await report.get(path, headers=bearer("nobody"))).status_code == 403, path
        assert (await report.get(path)).status_code == 401, path
    bad = await report.get(
        "/dora", params={"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, headers=VIEWER
    )
    assert bad.status_code == 422
