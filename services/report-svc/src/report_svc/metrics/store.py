"""Reading the facts tables into the plain values ``formulas`` works on.

Figures are recomputed from the facts at read time, so they are a function of the set of facts only. The
timeline of one service (its merged deployments, rollbacks and incident links) is cached per process and
keyed by a fingerprint of that service's facts, so repeated reads over unchanged facts do not redo the merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from report_svc.metrics import formulas as f
from report_svc.projections.facts import (
    CatalogueService,
    CommitRecord,
    DeploymentReport,
    EnvironmentView,
    FreezeView,
    GateDecisionRecord,
    IncidentFact,
    ReleaseView,
    RollbackFact,
    WindowView,
)
from report_svc.projections.models import ChangeLifecycle, ChangeView

APPROVED_STATES = {"approved", "implementing", "completed", "closed"}


def _scoped(stmt: Select[Any], column: Any, services: set[str] | None) -> Select[Any]:
    return stmt if services is None else stmt.where(column.in_(sorted(services)))


async def services_of_team(session: AsyncSession, team: str) -> set[str]:
    rows = await session.execute(select(CatalogueService.name).where(CatalogueService.team == team))
    return set(rows.scalars())


async def production_environments(session: AsyncSession) -> set[str]:
    rows = await session.execute(select(EnvironmentView.name).where(EnvironmentView.production.is_(True)))
    return {"production", *rows.scalars()}


async def load_facts(session: AsyncSession, *, services: set[str] | None, environments: set[str] | None) -> f.Facts:
    """The facts of ``services`` (None: all) in ``environments`` (None: all), changes and releases included."""

    def env_scoped(stmt: Select[Any], column: Any) -> Select[Any]:
        return stmt if environments is None else stmt.where(column.in_(sorted(environments)))

    # plain tuples, not ORM objects: these are the largest reads of the service
    r = DeploymentReport
    report_cols = (r.report_key, r.service, r.environment, r.at, r.outcome, r.commit, r.version, r.source)
    reports = [
        f.Report(*row, change_id=change_id, release_id=release_id)
        for *row, change_id, release_id in (
            await session.execute(
                env_scoped(_scoped(select(*report_cols, r.change_id, r.release_id), r.service, services), r.environment)
            )
        ).all()
    ]
    b = RollbackFact
    rollbacks = [
        f.Rollback(*row)
        for row in (
            await session.execute(
                env_scoped(_scoped(select(b.service, b.environment, b.at), b.service, services), b.environment)
            )
        ).all()
    ]
    i = IncidentFact
    incident_cols = (i.incident_id, i.service, i.environment, i.started_at, i.resolved_at, i.version, i.commit)
    incidents = [
        f.Incident(*row)
        for row in (
            await session.execute(env_scoped(_scoped(select(*incident_cols), i.service, services), i.environment))
        ).all()
    ]
    c = CommitRecord
    commits = [
        f.CommitFact(*row)
        for row in (
            await session.execute(
                _scoped(select(c.commit_key, c.service, c.started_at, c.pushed_at, c.sha), c.service, services)
            )
        ).all()
    ]
    return f.Facts(
        reports=reports,
        rollbacks=rollbacks,
        incidents=incidents,
        commits=commits,
        changes=await load_changes(session, services),
        release_changes=await load_release_changes(session),
    )


async def load_changes(session: AsyncSession, services: set[str] | None = None) -> dict[str, f.ChangeFact]:
    stmt = _scoped(
        select(ChangeView, ChangeLifecycle).outerjoin(
            ChangeLifecycle, ChangeLifecycle.change_id == ChangeView.change_id
        ),
        ChangeView.service,
        services,
    )
    out: dict[str, f.ChangeFact] = {}
    for view, life in (await session.execute(stmt)).all():
        approved = view.state in APPROVED_STATES or (life is not None and life.approved_at is not None)
        out[view.change_id] = f.ChangeFact(
            change_id=view.change_id,
            service=view.service,
            environment=view.environment,
            type=view.type,
            approved=approved,
            planned_start=life.planned_start if life else None,
            planned_end=life.planned_end if life else None,
        )
    return out


async def load_release_changes(session: AsyncSession) -> dict[str, Sequence[str]]:
    rows = await session.execute(select(ReleaseView.release_id, ReleaseView.changes))
    return {rid: list(changes or []) for rid, changes in rows.all()}


@dataclass(frozen=True)
class GreenZone:
    windows: list[f.Window]
    freezes: list[f.Freeze]
    decisions: list[f.GateDecisionFact]

    def green(self, d: f.Deployment) -> bool:
        return f.green(d, self.windows, self.freezes, self.decisions)


async def load_green_zone(session: AsyncSession, services: set[str] | None = None) -> GreenZone:
    windows = [
        f.Window(w.environment, frozenset(w.days), _time(w.start), _time(w.end), w.timezone)
        for w in (await session.execute(select(WindowView))).scalars().all()
        if w.days and (w.removed_at is None or w.defined_at > w.removed_at)
    ]
    freezes = [
        f.Freeze(
            z.start,
            z.end if z.lifted_at is None else min(z.end, z.lifted_at),
            frozenset(z.environments),
            frozenset(z.services),
        )
        for z in (await session.execute(select(FreezeView))).scalars().all()
        if z.start is not None and z.end is not None
    ]
    g = GateDecisionRecord
    decisions = [
        f.GateDecisionFact(d.service, d.environment, d.decision, frozenset(d.reasons), d.evaluated_at)
        for d in (await session.execute(_scoped(select(g), g.service, services))).scalars().all()
    ]
    return GreenZone(windows, freezes, decisions)


def _time(value: time) -> time:
    return value.replace(tzinfo=None)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")
