"""The DORA figures of any period from a per-service index: the same formulas, decided once per set of facts.

``formulas.dora`` decides everything from the facts at each call. Here the per-deployment and per-commit decisions
(merged deployments, failed or not, rework or not, next success, each commit's delivery and lead time) are made
once for a service and environment, kept sorted by time, and a period is a pair of binary searches. The index is
rebuilt whenever that service's facts change (``fact_versions``), so it is still a function of the facts only.
``tests/unit/test_index.py`` checks it against ``formulas.dora`` on generated histories.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from report_svc.metrics import formulas as f


@dataclass(frozen=True)
class DeploymentMark:
    at: datetime
    day: int  # the UTC date's ordinal, for deploy days
    succeeded: bool
    failed: bool
    rework: bool
    recovery_hours: float | None  # to the next success, for a failed one that recovered


@dataclass
class ServiceIndex:
    """One service in one environment."""

    deployment_times: list[datetime]
    deployments: list[DeploymentMark]
    delivery_times: list[datetime]  # of the commits' delivering deployments, sorted
    leads: list[float]  # hours, > 0, aligned with delivery_times
    restore_times: list[datetime]  # incident ends, sorted
    restores: list[float]  # hours, aligned


def build(facts: f.Facts, service: str, environment: str) -> ServiceIndex:
    tl = f.timeline(facts.reports, facts.rollbacks, facts.incidents)
    mine = [d for d in tl.deployments if d.service == service and d.environment == environment]
    by_target = f._by_target(facts.changes.values())
    open_incidents = [
        i for i in facts.incidents if i.service == service and i.environment == environment and i.start is not None
    ]
    marks = []
    for d in mine:
        failed = tl.failed(d)
        nxt = tl.next_success.get(d.id)
        delivered = f.delivered_changes(
            d, facts.changes, facts.release_changes, candidates=by_target.get((d.service, d.environment), [])
        )
        rework = d.succeeded and (
            any(c.type == "emergency" for c in delivered)
            or any(i.start is not None and i.start <= d.at and (i.end is None or d.at < i.end) for i in open_incidents)
        )
        recovery = f.hours(nxt - d.at) if failed and nxt is not None else None
        marks.append(DeploymentMark(d.at, d.at.astimezone(UTC).toordinal(), d.succeeded, failed, rework, recovery))
    finder = f.Deliveries(mine)
    deliveries = []
    for c in facts.commits:
        if c.service != service:
            continue
        delivered_by = finder.of(c)
        if delivered_by is not None:
            lead = f.hours(delivered_by.at - c.timestamp)
            if lead > 0:
                deliveries.append((delivered_by.at, lead))
    deliveries.sort()
    restores = sorted(
        (i.end, f.hours(i.end - i.start))
        for i in facts.incidents
        if i.service == service and i.environment == environment and i.start is not None and i.end is not None
    )
    return ServiceIndex(
        deployment_times=[m.at for m in marks],
        deployments=marks,
        delivery_times=[t for t, _ in deliveries],
        leads=[v for _, v in deliveries],
        restore_times=[t for t, _ in restores],
        restores=[v for _, v in restores],
    )


def _slice(times: list[datetime], values: list[Any], start: datetime, end: datetime) -> list[Any]:
    return values[bisect_left(times, start) : bisect_left(times, end)]


def dora(indexes: Iterable[ServiceIndex], start: datetime, end: datetime) -> dict[str, Any]:
    """``formulas.dora`` over the union of ``indexes`` for [start, end)."""
    marks: list[DeploymentMark] = []
    leads: list[float] = []
    restores: list[float] = []
    for ix in indexes:
        marks.extend(_slice(ix.deployment_times, ix.deployments, start, end))
        leads.extend(_slice(ix.delivery_times, ix.leads, start, end))
        restores.extend(_slice(ix.restore_times, ix.restores, start, end))
    # one pass over the deployments: this is the hot loop of /dora for all services
    successes = failed_count = reworked = 0
    days: set[int] = set()
    recoveries: list[float] = []
    for m in marks:
        if m.succeeded:
            successes += 1
            days.add(m.day)
            if m.rework:
                reworked += 1
        if m.failed:
            failed_count += 1
            if m.recovery_hours is not None:
                recoveries.append(m.recovery_hours)
    period_days = (end - start).total_seconds() / 86400
    per_day = successes / period_days if successes and period_days > 0 else None
    rate = failed_count / len(marks) if marks else None
    leads.sort()  # once, for both quantiles
    lead_median = f.percentile(leads, 0.5, presorted=True)
    restore_median = f.median(restores)
    frequency = {
        "deployments": successes,
        "deploy_days": len(days),
        "per_day": f._round(per_day),
        "level": f.frequency_level(per_day),
    }
    lead_time = {
        "median_hours": f._round(lead_median),
        "p90_hours": f._round(f.percentile(leads, 0.9, presorted=True)),
        "changes": len(leads),
        "level": f.lead_time_level(lead_median),
    }
    failure = {
        "failed_deployments": failed_count,
        "deployments": len(marks),
        "rate": f._round(rate),
        "level": f.failure_rate_level(rate),
    }
    restore = {
        "median_hours": f._round(restore_median),
        "incidents": len(restores),
        "level": f.restore_level(restore_median),
    }
    return {
        "deployment_frequency": frequency,
        "lead_time_for_changes": lead_time,
        "change_failure_rate": failure,
        "time_to_restore": restore,
        "failed_deployment_recovery_time": {"median_hours": f._round(f.median(recoveries)), "samples": len(recoveries)},
        "rework_rate": {
            "rework_deployments": reworked,
            "deployments": successes,
            "rate": f._round(reworked / successes if successes else None),
        },
        "performance_level": f.performance_level(
            frequency["level"], lead_time["level"], failure["level"], restore["level"]
        ),
    }
