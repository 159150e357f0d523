"""Reads: runs, deployments and evidence, filtered and paginated (newest first, keyset cursors)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import Select, Uuid, literal, select, tuple_

from greenzone_common.auth import CurrentUser
from greenzone_common.pagination import Page, PageDep, PageParams, page_of
from greenzone_common.problems import Problem
from greenzone_common.service import SessionsDep
from pipeline_svc.facts.models import Deployment, Evidence, Run
from pipeline_svc.facts.policy import normalise_environment, parse_time
from pipeline_svc.facts.schemas import DeploymentRead, EvidenceRead, RunRead
from pipeline_svc.facts.views import deployment_read, evidence_read, run_read

router = APIRouter(tags=["reads"])

Text = Annotated[str | None, Query(max_length=200)]
When = Annotated[datetime | None, Query()]


def after(stmt: Select[Any], time_col: Any, id_col: Any, params: PageParams) -> Select[Any]:
    """Newest first; a cursor is ``[time, id]`` of the last row already returned."""
    if params.after:
        try:
            moment = parse_time(params.after[0])
            ident: Any = params.after[1]
            if isinstance(id_col.type, Uuid):
                ident = uuid.UUID(str(ident))
        except (IndexError, ValueError) as exc:
            raise Problem(400, "The cursor is not one this API returned", slug="invalid-cursor") from exc
        if moment is None:
            raise Problem(400, "The cursor is not one this API returned", slug="invalid-cursor")
        stmt = stmt.where(tuple_(time_col, id_col) < tuple_(literal(moment), literal(ident)))
    return stmt.order_by(time_col.desc(), id_col.desc()).limit(params.limit + 1)


@router.get("/runs", response_model=Page[RunRead])
async def list_runs(
    user: CurrentUser,
    sessions: SessionsDep,
    page: PageDep,
    service: Text = None,
    pipeline: Text = None,
    kind: Text = None,
    outcome: Text = None,
    status: Text = None,
    source: Text = None,
    commit: Text = None,
    since: When = None,
) -> Page[RunRead]:
    stmt = select(Run)
    for column, value in (
        (Run.service, service),
        (Run.pipeline, pipeline),
        (Run.kind, kind),
        (Run.outcome, outcome),
        (Run.status, status),
        (Run.source, source),
        (Run.commit, commit),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(Run.updated_at >= since)
    async with sessions() as session:
        rows = list((await session.execute(after(stmt, Run.updated_at, Run.id, page))).scalars())
    reads = [(r.updated_at, run_read(r)) for r in rows]
    result = page_of(reads, page, key=lambda x: [x[0].isoformat(), x[1].id])
    return Page[RunRead](items=[r for _, r in result.items], next_cursor=result.next_cursor)


@router.get("/deployments", response_model=Page[DeploymentRead])
async def list_deployments(
    user: CurrentUser,
    sessions: SessionsDep,
    page: PageDep,
    service: Text = None,
    environment: Text = None,
    outcome: Text = None,
    version: Text = None,
    commit: Text = None,
    source: Text = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: When = None,
) -> Page[DeploymentRead]:
    stmt = select(Deployment)
    for column, value in (
        (Deployment.service, service),
        (Deployment.environment, normalise_environment(environment) if environment else None),
        (Deployment.outcome, outcome),
        (Deployment.version, version),
        (Deployment.commit, commit),
        (Deployment.source, source),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if from_ is not None:
        stmt = stmt.where(Deployment.at >= from_)
    if to is not None:
        stmt = stmt.where(Deployment.at < to)
    async with sessions() as session:
        rows = list((await session.execute(after(stmt, Deployment.at, Deployment.id, page))).scalars())
    reads = [deployment_read(d) for d in rows]
    return page_of(reads, page, key=lambda d: [d.at.isoformat(), d.id])


@router.get("/evidence", response_model=Page[EvidenceRead])
async def list_evidence(
    user: CurrentUser,
    sessions: SessionsDep,
    page: PageDep,
    service: Text = None,
    version: Text = None,
    commit: Text = None,
    kind: Annotated[str | None, Query(pattern="^(tests|scan)$")] = None,
) -> Page[EvidenceRead]:
    stmt = select(Evidence)
    for column, value in (
        (Evidence.service, service),
        (Evidence.version, version),
        (Evidence.commit, commit),
        (Evidence.kind, kind),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    async with sessions() as session:
        rows = list((await session.execute(after(stmt, Evidence.reported_at, Evidence.id, page))).scalars())
    reads = [evidence_read(e) for e in rows]
    return page_of(reads, page, key=lambda e: [e.reported_at.isoformat(), e.id])
