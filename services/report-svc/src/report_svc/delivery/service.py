"""Traceability, build-chain performance and adoption, and the maturity scorecard (METRICS.md, other figures)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from report_svc.metrics import formulas as f
from report_svc.metrics.period import Period
from report_svc.metrics.store import (
    GreenZone,
    iso,
    load_facts,
    load_green_zone,
    production_environments,
)
from report_svc.projections.facts import CatalogueService, PipelineRun, TestEvidence
from report_svc.projections.models import ChangeLifecycle, ChangeView

#: Deployments recorded through release-svc's API; every other source is a delivery tool (a pipeline).
API_SOURCES = {"release-svc", "api"}
MATURITY_DAYS = 90


def _share(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


@dataclass
class ProductionView:
    """The production deployments of a set of facts, with what is known about each."""

    facts: f.Facts
    timeline: f.Timeline
    zone: GreenZone
    environments: set[str]

    def deployments(self, period: Period, service: str | None = None) -> list[f.Deployment]:
        return [
            d
            for d in self.timeline.deployments
            if d.environment in self.environments
            and period.start <= d.at < period.end
            and (service is None or d.service == service)
        ]

    def changes_of(self, d: f.Deployment) -> list[f.ChangeFact]:
        return f.delivered_changes(d, self.facts.changes, self.facts.release_changes)

    def traced(self, d: f.Deployment) -> bool:
        return any(c.approved for c in self.changes_of(d))


async def production_view(session: AsyncSession, services: set[str] | None = None) -> ProductionView:
    envs = await production_environments(session)
    facts = await load_facts(session, services=services, environments=envs)
    return ProductionView(
        facts, f.timeline(facts.reports, facts.rollbacks, facts.incidents), await load_green_zone(session), envs
    )


def _deployment(d: f.Deployment, view: ProductionView) -> dict[str, Any]:
    return {
        "id": d.id,
        "service": d.service,
        "environment": d.environment,
        "at": iso(d.at),
        "outcome": d.outcome,
        "version": d.version,
        "commit": d.commit,
        "sources": sorted(d.sources),
        "changes": [c.change_id for c in view.changes_of(d) if c.approved],
    }


async def traceability(session: AsyncSession, period: Period, service: str | None) -> dict[str, Any]:
    view = await production_view(session, {service} if service else None)
    deployments = view.deployments(period)
    traced = [d for d in deployments if view.traced(d)]
    unrecorded = [d for d in deployments if not view.traced(d)]
    return {
        "from": iso(period.start),
        "to": iso(period.end),
        "deployments": len(deployments),
        "traced": len(traced),
        "coverage": _share(len(traced), len(deployments)),
        "with_change": [_deployment(d, view) for d in traced],
        "unrecorded": [_deployment(d, view) for d in unrecorded],
    }


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else (b - a).total_seconds()


def _duration(run: PipelineRun) -> float | None:
    return run.duration_s if run.duration_s is not None else _seconds(run.started_at, run.finished_at)


def _queue(run: PipelineRun) -> float | None:
    return run.queue_s if run.queue_s is not None else _seconds(run.queued_at, run.started_at)


async def pipeline_stats(session: AsyncSession, period: Period) -> dict[str, Any]:
    runs = (
        (
            await session.execute(
                select(PipelineRun).where(PipelineRun.finished_at >= period.start, PipelineRun.finished_at < period.end)
            )
        )
        .scalars()
        .all()
    )
    groups: dict[tuple[str, str], list[PipelineRun]] = defaultdict(list)
    for run in runs:
        groups[(run.service, run.pipeline)].append(run)
    items = []
    for (service, pipeline), rs in sorted(groups.items()):
        durations = [s for r in rs if (s := _duration(r)) is not None and s >= 0]
        queues = [s for r in rs if (s := _queue(r)) is not None and s >= 0]
        successes = sum(1 for r in rs if r.outcome == "success")
        p50, p95, q50 = f.percentile(durations, 0.5), f.percentile(durations, 0.95), f.percentile(queues, 0.5)
        items.append(
            {
                "service": service,
                "pipeline": pipeline,
                "runs": len(rs),
                "success_rate": _share(successes, len(rs)),
                "duration_p50_seconds": None if p50 is None else round(p50, 3),
                "duration_p95_seconds": None if p95 is None else round(p95, 3),
                "queue_time_p50_seconds": None if q50 is None else round(q50, 3),
            }
        )
    view = await production_view(session)
    deployments = view.deployments(period)
    from_pipeline = [d for d in deployments if d.sources - API_SOURCES]
    senders = (
        {r.service for r in view.facts.reports if period.start <= r.at < period.end}
        | {r.service for r in runs}
        | {c.service for c in view.facts.commits if period.start <= c.pushed_at < period.end}
    )
    return {
        "from": iso(period.start),
        "to": iso(period.end),
        "items": items,
        "adoption": {
            "services_sending_events": len(senders),
            "production_deployments": len(deployments),
            "from_pipeline": len(from_pipeline),
            "pipeline_share": _share(len(from_pipeline), len(deployments)),
        },
    }


async def maturity(session: AsyncSession, now: datetime | None = None) -> dict[str, Any]:
    end = now or datetime.now(UTC)
    period = Period(end - timedelta(days=MATURITY_DAYS), end)
    view = await production_view(session)
    catalogue = {
        name: team for name, team in (await session.execute(select(CatalogueService.name, CatalogueService.team))).all()
    }
    services = sorted(set(catalogue) | {d.service for d in view.timeline.deployments})
    evidence = {
        (s, key)
        for s, version, commit in (
            await session.execute(select(TestEvidence.service, TestEvidence.version, TestEvidence.commit))
        ).all()
        for key in (f"v:{version}" if version else None, f"c:{commit}" if commit else None)
        if key
    }
    completed: dict[str, list[str]] = defaultdict(list)
    for service, outcome in (
        await session.execute(
            select(ChangeView.service, ChangeLifecycle.outcome)
            .join(ChangeLifecycle, ChangeLifecycle.change_id == ChangeView.change_id)
            .where(ChangeLifecycle.completed_at >= period.start, ChangeLifecycle.completed_at < period.end)
        )
    ).all():
        completed[service].append(outcome or "")
    items = []
    for service in services:
        ds = view.deployments(period, service)
        dora = f.dora(
            view.facts,
            services={service},
            environment="production",
            start=period.start,
            end=period.end,
            tl=view.timeline,
        )
        tested = [d for d in ds if (service, f"v:{d.version}") in evidence or (service, f"c:{d.commit}") in evidence]
        outcomes = completed.get(service, [])
        items.append(
            {
                "service": service,
                "team": catalogue.get(service),
                "dora_level": dora["performance_level"],
                "production_deployments": len(ds),
                "test_evidence_coverage": _share(len(tested), len(ds)),
                "traceability_coverage": _share(sum(1 for d in ds if view.traced(d)), len(ds)),
                "green_zone_compliance": _share(sum(1 for d in ds if view.zone.green(d)), len(ds)),
                "change_success_score": _share(sum(1 for o in outcomes if o == "successful"), len(outcomes)),
                "automation_share": _share(sum(1 for d in ds if d.sources - API_SOURCES), len(ds)),
            }
        )
    return {"from": iso(period.start), "to": iso(period.end), "items": items}
