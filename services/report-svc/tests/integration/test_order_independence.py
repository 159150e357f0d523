"""One generated history, published in several shuffled orders with redeliveries: identical /dora answers."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from greenzone_common.contracts import change as ch
from greenzone_common.contracts import pipeline as pl
from greenzone_common.contracts import release as rl
from greenzone_common.contracts.base import EventData
from greenzone_common.testing.helpers import eventually
from report_svc.config import Settings

from .conftest import VIEWER, Sent, publish

pytestmark = pytest.mark.integration

T = datetime(2026, 1, 5, tzinfo=UTC)
SERVICES = ("api", "web", "worker")


def history(prefix: str, seed: int = 7, start: datetime = T) -> list[Sent]:
    """A few weeks of delivery for three services; the same ``seed`` gives the same history under any prefix
    (ce ids included, so that a redelivery is recognisable)."""
    rng = random.Random(seed)
    events: list[tuple[str, EventData]] = []

    def add(data: EventData) -> None:
        events.append((f"{prefix}-{len(events)}", data))

    for name in SERVICES:
        service = f"{prefix}-{name}"
        add(rl.ServiceRegistered(name=service, team=f"team-{prefix}", registered_at=start))
        now = start
        emergency = str(uuid.UUID(int=rng.getrandbits(128)))
        add(
            ch.ChangeCreated(
                change_id=f"{prefix}-{emergency}",
                number="CHG-1",
                type="emergency",
                service=service,
                environment="production",
                title="hotfix",
                requested_by="alice",
                risk={"score": 50, "level": "medium"},
                created_at=start,
            )
        )
        for n in range(25):
            now += timedelta(hours=rng.uniform(2, 30))
            sha = f"{name}{n:03d}"
            commits = [{"sha": f"{sha}-{k}", "timestamp": now - timedelta(hours=rng.uniform(-1, 48))} for k in range(3)]
            add(
                pl.CommitsPushed(
                    service=service,
                    repository=f"org/{service}",
                    branch="main",
                    default_branch="main",
                    commits=commits,
                    pushed_at=now - timedelta(minutes=rng.uniform(5, 120)),
                    source="github",
                )
            )
            if rng.random() < 0.2:
                add(
                    pl.CodeChangeMerged(
                        service=service,
                        repository=f"org/{service}",
                        change_id=f"pr-{sha}",
                        started_at=now - timedelta(hours=rng.uniform(1, 90)),
                        merged_at=now - timedelta(minutes=30),
                        commit=sha,
                        source="cdevents",
                    )
                )
            outcome = "failure" if rng.random() < 0.15 else "success"
            add(
                pl.DeploymentObserved(
                    service=service,
                    environment=rng.choice(["production", "prod"]),
                    commit=sha,
                    version=f"1.{n}",
                    outcome=outcome,
                    at=now,
                    source="github",
                    source_id=f"gh-{sha}",
                    change_id=f"{prefix}-{emergency}" if n == 3 else None,
                )
            )
            if rng.random() < 0.5:  # the same deployment seen by another tool a few minutes later
                add(
                    pl.DeploymentObserved(
                        service=service,
                        environment="production",
                        version=f"1.{n}",
                        outcome="success",
                        at=now + timedelta(minutes=rng.uniform(1, 14)),
                        source="cdevents",
                        source_id=f"cd-{sha}",
                    )
                )
            if rng.random() < 0.1:
                add(
                    pl.RollbackObserved(
                        service=service,
                        environment="production",
                        at=now + timedelta(minutes=40),
                        source="cdevents",
                        source_id=f"rb-{sha}",
                    )
                )
            if rng.random() < 0.15:
                incident = f"{prefix}-inc-{sha}"
                start = now + timedelta(hours=rng.uniform(0.1, 3))
                add(pl.IncidentDetected(incident_id=incident, service=service, environment="production", at=start))
                add(
                    pl.IncidentResolved(
                        incident_id=incident,
                        service=service,
                        environment="production",
                        at=start + timedelta(hours=rng.uniform(0.2, 20)),
                    )
                )
            if rng.random() < 0.2:
                add(
                    pl.DeploymentObserved(
                        service=service,
                        environment="staging",
                        commit=sha,
                        outcome="success",
                        at=now - timedelta(hours=1),
                        source="github",
                        source_id=f"stg-{sha}",
                    )
                )
    return [Sent(data, ce_id) for ce_id, data in events]


def reordered(events: list[Sent], seed: int) -> list[Sent]:
    """Shuffled, with a fifth of the events delivered again (same ce id) at random later places."""
    rng = random.Random(seed)
    out = list(events)
    rng.shuffle(out)
    for e in rng.sample(events, len(events) // 5):
        out.insert(rng.randrange(len(out) + 1), e)
    return out


async def consumed(dsn: str, ce_ids: set[str]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval("SELECT count(DISTINCT ce_id) FROM report.inbox WHERE ce_id = ANY($1)", list(ce_ids))
        )
    finally:
        await conn.close()


async def test_shuffled_orders_with_redeliveries_give_identical_dora(
    report: httpx.AsyncClient, report_settings: Settings
) -> None:
    run = uuid.uuid4().hex[:6]
    prefixes = [f"o{i}{run}" for i in range(3)]
    histories = {p: history(p) for p in prefixes}
    orders = [
        histories[prefixes[0]],  # as it happened
        reordered(histories[prefixes[1]], seed=1),
        list(reversed(reordered(histories[prefixes[2]], seed=2))),
    ]
    # the three orders interleaved on the wire, the way independent producers would
    wire: list[Sent] = []
    for chunk in range(0, max(len(o) for o in orders), 7):
        for order in orders:
            wire.extend(order[chunk : chunk + 7])
    await publish(report_settings, wire)
    expected = {e.ce_id for o in orders for e in o}

    async def all_consumed() -> bool:
        return await consumed(report_settings.asyncpg_dsn, expected) == len(expected)

    await eventually(all_consumed, timeout=60)

    window = {"from": T.isoformat(), "to": (T + timedelta(days=60)).isoformat()}

    async def dora(**params: str) -> dict[str, Any]:
        response = await report.get("/dora", params={**window, **params}, headers=VIEWER)
        assert response.status_code == 200, response.text
        body = response.json()
        body.pop("service"), body.pop("team")
        return dict(body)

    for name in SERVICES:
        answers = [await dora(service=f"{p}-{name}") for p in prefixes]
        assert answers[0] == answers[1] == answers[2], name
    teams = [await dora(team=f"team-{p}") for p in prefixes]
    assert teams[0] == teams[1] == teams[2]
    staging = [await dora(team=f"team-{p}", environment="staging") for p in prefixes]
    assert staging[0] == staging[1] == staging[2]

    figures = teams[0]
    assert figures["deployment_frequency"]["deployments"] > 30
    assert figures["change_failure_rate"]["failed_deployments"] > 0
    assert figures["lead_time_for_changes"]["changes"] > 100
    assert figures["time_to_restore"]["incidents"] > 0
    assert figures["rework_rate"]["rework_deployments"] > 0
    # the second tool's reports merged into the deployments they saw: fewer deployments than reports
    reports = sum(1 for e in histories[prefixes[0]] if isinstance(e.data, pl.DeploymentObserved))
    assert figures["change_failure_rate"]["deployments"] + staging[0]["change_failure_rate"]["deployments"] < reports
