from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from greenzone_common.auth import CurrentUser, Principal, RequireRole
from greenzone_common.db import unit_of_work
from greenzone_common.pagination import Page, PageDep, page_of
from greenzone_common.problems import Problem
from greenzone_common.service import OutboxDep, SessionsDep
from pipeline_svc.facts.models import Incident
from pipeline_svc.facts.policy import normalise_environment
from pipeline_svc.facts.routes import after
from pipeline_svc.incidents import service
from pipeline_svc.incidents.schemas import IncidentCreate, IncidentRead, IncidentResolve

router = APIRouter(tags=["incidents"])

Reporter = Annotated[Principal, RequireRole("pipeline", "admin", "release_manager")]


@router.post("/incidents", status_code=201, response_model=IncidentRead)
async def report_incident(
    body: IncidentCreate, user: Reporter, sessions: SessionsDep, outbox: OutboxDep
) -> IncidentRead:
    async with unit_of_work(sessions) as session:
        incident = await service.report(session, outbox, body, user)
    return service.to_read(incident)


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentRead)
async def resolve_incident(
    incident_id: str, user: Reporter, sessions: SessionsDep, outbox: OutboxDep, body: IncidentResolve | None = None
) -> IncidentRead:
    data = body or IncidentResolve()
    async with unit_of_work(sessions) as session:
        existing = await session.get(Incident, incident_id)
        if (
            existing is not None
            and data.resolved_at
            and existing.detected_at
            and data.resolved_at < existing.detected_at
        ):
            raise Problem(422, "resolved_at is before the incident was detected", slug="validation-error")
        try:
            incident = await service.resolve(session, outbox, incident_id, data, user)
        except service.IncidentNotFound:
            raise Problem(404, f"No incident with id {incident_id}") from None
        except service.AlreadyResolved:
            raise Problem(409, f"Incident {incident_id} is already resolved", slug="already-resolved") from None
    return service.to_read(incident)


@router.get("/incidents/{incident_id}", response_model=IncidentRead)
async def get_incident(incident_id: str, user: CurrentUser, sessions: SessionsDep) -> IncidentRead:
    async with sessions() as session:
        incident = await session.get(Incident, incident_id)
    if incident is None:
        raise Problem(404, f"No incident with id {incident_id}")
    return service.to_read(incident)


@router.get("/incidents", response_model=Page[IncidentRead])
async def list_incidents(
    user: CurrentUser,
    sessions: SessionsDep,
    page: PageDep,
    service_: Annotated[str | None, Query(alias="service", max_length=200)] = None,
    environment: Annotated[str | None, Query(max_length=100)] = None,
    state: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    severity: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[IncidentRead]:
    stmt = select(Incident)
    if service_ is not None:
        stmt = stmt.where(Incident.service == service_)
    if environment is not None:
        stmt = stmt.where(Incident.environment == normalise_environment(environment))
    if severity is not None:
        stmt = stmt.where(Incident.severity == severity)
    if state == "open":
        stmt = stmt.where(Incident.resolved_at.is_(None))
    elif state == "resolved":
        stmt = stmt.where(Incident.resolved_at.is_not(None))
    async with sessions() as session:
        rows = list((await session.execute(after(stmt, Incident.created_at, Incident.id, page))).scalars())
    pairs = [(i.created_at, service.to_read(i)) for i in rows]
    result = page_of(pairs, page, key=lambda x: [x[0].isoformat(), x[1].id])
    return Page[IncidentRead](items=[r for _, r in result.items], next_cursor=result.next_cursor)
