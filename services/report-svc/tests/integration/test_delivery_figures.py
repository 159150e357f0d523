"""Traceability, build-chain performance, the maturity scorecard and platform health, from broker events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from greenzone_common.contracts import change as ch
from greenzone_common.contracts import pipeline as pl
from greenzone_common.contracts import release as rl
from greenzone_common.devstack import Tansu
from greenzone_common.testing.helpers import eventually, running
from report_svc.config import Settings
from report_svc.main import create_app

from .conftest import VIEWER, publish, sent

pytestmark = pytest.mark.integration

T = (datetime.now(UTC) - timedelta(days=10)).replace(minute=0, second=0, microsecond=0)


def at(hours: float) -> datetime:
    return T + timedelta(hours=hours)


@pytest.fixture
def fast_beats(settings_for: Callable[..., Any], own_broker: Tansu) -> Settings:
    settings: Settings = settings_for(
        Settings,
        kafka_bootstrap=own_broker.bootstrap,  # no backlog of other tests' events to catch up on
        consumer_group_suffix=f".t{uuid.uuid4().hex[:8]}",
        heartbeat_interval=0.3,
    )
    return settings


@pytest.fixture
async def client(fast_beats: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(fast_beats)) as c:
        yield c


def events(service: str) -> list[Any]:
    change = {
        "change_id": str(uuid.uuid4()),
        "number": "CHG-7",
        "type": "normal",
        "service": service,
        "environment": "production",
    }
    runs = [
        (60, 10, "success"),
        (120, 20, "success"),
        (300, 30, "failure"),
    ]
    return [
        rl.ServiceRegistered(name=service, team="payments", registered_at=at(-10)),
        ch.ChangeCreated(
            **change, title="t", requested_by="alice", risk={"score": 5, "level": "low"}, created_at=at(-5)
        ),
        ch.ChangeApproved(**change, required_approvals=1, planned_start=at(0), planned_end=at(2), approved_at=at(-1)),
        ch.ChangeCompleted(**change, outcome="successful", completed_at=at(1.5)),
        rl.GateEvaluated(
            decision_id=str(uuid.uuid4()),
            service=service,
            environment="production",
            decision="allow",
            evaluated_at=at(0.9),
        ),
        rl.FreezeScheduled(
            freeze_id=str(uuid.uuid4()),
            name="incident freeze",
            start=at(4),
            end=at(6),
            environments=["production"],
            services=[service],
            scheduled_at=at(3),
        ),
        pl.DeploymentObserved(
            service=service,
            environment="production",
            commit="aaa",
            outcome="success",
            at=at(1),
            source="github",
            source_id="1",
        ),
        pl.DeploymentObserved(
            service=service,
            environment="production",
            commit="bbb",
            outcome="success",
            at=at(5),
            source="gitlab",
            source_id="2",
        ),
        pl.TestsReported(service=service, commit="aaa", counts={"passed": 3}, outcome="success", reported_at=at(0.5)),
        *[
            pl.PipelineRunFinished(
                service=service,
                pipeline="build",
                run_id=str(n),
                outcome=outcome,
                queued_at=at(0) - timedelta(seconds=queue),
                started_at=at(0),
                finished_at=at(0) + timedelta(seconds=duration),
                source="github",
            )
            for n, (duration, queue, outcome) in enumerate(runs)
        ],
    ]


async def test_traceability_pipeline_stats_maturity_and_platform_health(
    client: httpx.AsyncClient, fast_beats: Settings
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    await publish(fast_beats, [sent(e) for e in events(service)])
    period = {"from": at(-24).isoformat(), "to": at(24).isoformat(), "service": service}

    async def traced() -> dict[str, Any] | None:
        body = (await client.get("/traceability", params=period, headers=VIEWER)).json()
        return body if body["deployments"] == 2 and body["traced"] == 1 else None

    trace = await eventually(traced, timeout=30)
    assert trace["coverage"] == 0.5
    assert [d["commit"] for d in trace["unrecorded"]] == ["bbb"]  # outside the change's planned window
    assert len(trace["with_change"][0]["changes"]) == 1

    async def stats() -> dict[str, Any] | None:
        body = (await client.get("/pipelines/stats", params=period, headers=VIEWER)).json()
        mine = [i for i in body["items"] if i["service"] == service]
        return mine[0] if mine and mine[0]["runs"] == 3 else None

    # durations 60, 120, 300 s: p95 at rank 1.9 -> 120 + 0.9 x 180 = 282; queue times 10, 20, 30 s
    assert await eventually(stats, timeout=30) == {
        "service": service,
        "pipeline": "build",
        "runs": 3,
        "success_rate": 0.6667,
        "duration_p50_seconds": 120.0,
        "duration_p95_seconds": 282.0,
        "queue_time_p50_seconds": 20.0,
    }

    # the facts come from several topics, each its own consumer: wait until all of them have been applied
    expected = {
        "service": service,
        "team": "payments",
        "dora_level": "low",  # 2 deployments in 90 days is below 1/30 a day; change failure rate 0 is elite
        "production_deployments": 2,
        "test_evidence_coverage": 0.5,
        "traceability_coverage": 0.5,
        "green_zone_compliance": 0.5,  # the second deployment was made during a freeze
        "change_success_score": 1.0,
        "automation_share": 1.0,
    }

    async def scored() -> dict[str, Any] | None:
        body = (await client.get("/maturity", headers=VIEWER)).json()
        mine = [i for i in body["items"] if i["service"] == service]
        return mine[0] if mine and mine[0] == expected else None

    assert await eventually(scored, timeout=30) == expected

    async def beating() -> dict[str, Any] | None:
        body = (await client.get("/platform/health", headers=VIEWER)).json()
        mine = [s for s in body["services"] if s["service"] == "report-svc" and not s["stale"]]
        return mine[0] if mine else None

    beat = await eventually(beating, timeout=30)
    assert beat["outbox_backlog"] >= 0
    assert set(beat["consumer_lag"]) >= {f"report-svc.pipeline{fast_beats.consumer_group_suffix}"}
    assert "greenzone.pipeline.dlq" in beat["dlq_counts"]
    assert (await client.get("/platform/health")).status_code == 401
