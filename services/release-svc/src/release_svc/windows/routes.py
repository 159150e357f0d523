from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from greenzone_common.audit import Actor
from greenzone_common.auth import CurrentUser
from greenzone_common.db import unit_of_work
from greenzone_common.pagination import Page
from greenzone_common.problems import Problem, validation_problem
from greenzone_common.service import OutboxDep, SessionsDep
from release_svc.environments.policy import canonical_environment
from release_svc.roles import ReleaseManager
from release_svc.windows import service
from release_svc.windows.models import Window
from release_svc.windows.schemas import WindowCreate, WindowRead

router = APIRouter(tags=["windows"])


@router.post("/windows", status_code=201, response_model=WindowRead)
async def define_window(
    body: WindowCreate, user: ReleaseManager, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> WindowRead:
    try:
        async with unit_of_work(sessions) as session:
            window = await service.define(session, outbox, body, Actor.from_request(user, request), datetime.now(UTC))
    except service.UnknownEnvironment:
        raise validation_problem(
            [{"loc": ["body", "environment"], "msg": f"unknown environment {body.environment!r}"}]
        ) from None
    return service.to_read(window)


@router.get("/windows", response_model=Page[WindowRead])
async def list_windows(user: CurrentUser, sessions: SessionsDep, environment: str | None = None) -> Page[WindowRead]:
    async with sessions() as session:
        rows = await service.list_windows(session, canonical_environment(environment) if environment else None)
    return Page[WindowRead](items=[service.to_read(w) for w in rows], next_cursor=None)


@router.delete("/windows/{window_id}", status_code=204)
async def delete_window(
    window_id: str, user: ReleaseManager, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> Response:
    async with unit_of_work(sessions) as session:
        window = await session.get(Window, window_id, with_for_update=True)
        if window is None:
            raise Problem(404, f"No window with id {window_id}")
        await service.remove(session, outbox, window, Actor.from_request(user, request), datetime.now(UTC))
    return Response(status_code=204)
