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

from greenzone_common.db import session_driver
from report_svc.metrics import formulas as f
from report_svc.projections.facts import (
    CatalogueService,
    EnvironmentView,
    FreezeView,
    GateDecisionRecord,
    ReleaseView,
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


async def _fetch(session: AsyncSession, query: str, *args: Any) -> list[Any]:
    """Rows straight from asyncpg on the session's connection, in its transaction (one snapshot for every read):
    for the largest reads, where SQLAlchemy's result processing cost more than the query."""
    driver = await session_driver(session)
    rows: list[Any] = await driver.fetch(query, *args)
    return rows


def _where(
    services: set[str] | None, environments: set[str] | None, env_column: str | None
) -> tuple[str, list[list[str]]]:
    conditions: list[str] = []
    args: list[list[str]] = []
    if services is not None:
        args.append(sorted(services))
        conditions.append(f"service = ANY(${len(args)}::text[])")
    if environments is not None and env_column is not None:
        args.append(sorted(environments))
        conditions.append(f"{env_column} = ANY(${len(args)}::text[])")
    return (" WHERE " + " AND ".join(conditions)) if conditions else "", args


async def load_facts(
    session: AsyncSession,
    *,
    services: set[str] | None,
    environments: set[str] | None,
    release_changes: dict[str, Sequence[str]] | None = None,
) -> f.Facts:
    """The facts of ``services`` (None: all) in ``environments`` (None: all), changes and releases included
    (``release_changes`` when the caller already read them)."""

    async def rows(columns: str, table: str, *, env_column: str | None = "environment") -> list[Any]:
        where, args = _where(services, environments, env_column)
        return await _fetch(session, f"SELECT {columns} FROM report.{table}{where}", *args)

    reports = [
        f.Report(*row)
        for row in await rows(
            "report_key, service, environment, at, outcome, commit, version, source, change_id, release_id",
            "deployment_reports",
        )
    ]
    rollbacks = [f.Rollback(*row) for row in await rows("service, environment, at", "rollbacks")]
    incidents = [
        f.Incident(*row)
        for row in await rows(
            "incident_id, service, environment, started_at, resolved_at, version, commit", "incidents"
        )
    ]
    commits = [
        f.CommitFact(*row)
        for row in await rows("commit_key, service, started_at, pushed_at, sha", "commits", env_column=None)
    ]
    return f.Facts(
        reports=reports,
        rollbacks=rollbacks,
        incidents=incidents,
        commits=commits,
        changes=await load_changes(session, services),
        release_changes=release_changes if release_changes is not None else await load_release_changes(session),
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
