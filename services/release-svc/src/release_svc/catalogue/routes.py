from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from greenzone_common.audit import Actor
from greenzone_common.auth import CurrentUser
from greenzone_common.db import unit_of_work
from greenzone_common.pagination import Page, PageDep, page_of
from greenzone_common.problems import Problem
from greenzone_common.service import OutboxDep, SessionsDep
from release_svc.catalogue import service
from release_svc.catalogue.models import Service
from release_svc.catalogue.schemas import ServiceCreate, ServiceRead
from release_svc.roles import ReleaseManager

router = APIRouter(tags=["catalogue"])


@router.post("/services", status_code=201, response_model=ServiceRead)
async def register_service(
    body: ServiceCreate,
    user: ReleaseManager,
    request: Request,
    sessions: SessionsDep,
    outbox: OutboxDep,
    response: Response,
) -> ServiceRead:
    async with unit_of_work(sessions) as session:
        registered, created = await service.register(
            session, outbox, body, Actor.from_request(user, request), datetime.now(UTC)
        )
    if not created:
        response.status_code = 200
    return service.to_read(registered)


@router.get("/services", response_model=Page[ServiceRead])
async def list_services(user: CurrentUser, sessions: SessionsDep, page: PageDep) -> Page[ServiceRead]:
    async with sessions() as session:
        rows = await service.list_services(session, page.after[0] if page.after else None, page.limit + 1)
    result = page_of([service.to_read(r) for r in rows], page, key=lambda s: [s.name])
    return result


@router.get("/services/{name}", response_model=ServiceRead)
async def get_service(name: str, user: CurrentUser, sessions: SessionsDep) -> ServiceRead:
    async with sessions() as session:
        found = await session.get(Service, name)
    if found is None:
        raise Problem(404, f"No service named {name}")
    return service.to_read(found)
