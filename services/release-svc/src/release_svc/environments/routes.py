from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from greenzone_common.audit import Actor
from greenzone_common.auth import CurrentUser
from greenzone_common.db import unit_of_work
from greenzone_common.pagination import Page
from greenzone_common.problems import Problem
from greenzone_common.service import OutboxDep, SessionsDep
from release_svc.environments import service
from release_svc.environments.models import Environment
from release_svc.environments.policy import canonical_environment
from release_svc.environments.schemas import EnvironmentCreate, EnvironmentRead
from release_svc.roles import ReleaseManager

router = APIRouter(tags=["environments"])


@router.post("/environments", status_code=201, response_model=EnvironmentRead)
async def define_environment(
    body: EnvironmentCreate,
    user: ReleaseManager,
    request: Request,
    sessions: SessionsDep,
    outbox: OutboxDep,
    response: Response,
) -> EnvironmentRead:
    async with unit_of_work(sessions) as session:
        env, created = await service.define(session, outbox, body, Actor.from_request(user, request), datetime.now(UTC))
    if not created:
        response.status_code = 200
    return service.to_read(env)


@router.get("/environments", response_model=Page[EnvironmentRead])
async def list_environments(user: CurrentUser, sessions: SessionsDep) -> Page[EnvironmentRead]:
    """In promotion order. A handful of rows: one page, never a cursor."""
    async with sessions() as session:
        rows = await service.list_environments(session)
    return Page[EnvironmentRead](items=[service.to_read(e) for e in rows], next_cursor=None)


@router.get("/environments/{name}", response_model=EnvironmentRead)
async def get_environment(name: str, user: CurrentUser, sessions: SessionsDep) -> EnvironmentRead:
    async with sessions() as session:
        env = await session.get(Environment, canonical_environment(name))
    if env is None:
        raise Problem(404, f"No environment named {name}")
    return service.to_read(env)
