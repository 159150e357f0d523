from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from greenzone_common.audit import Actor
from greenzone_common.auth import CurrentUser
from greenzone_common.db import unit_of_work
from greenzone_common.pagination import Page, PageDep, page_of
from greenzone_common.problems import Problem, validation_problem
from greenzone_common.service import OutboxDep, SessionsDep
from release_svc.freezes import service
from release_svc.freezes.models import Freeze
from release_svc.freezes.schemas import FreezeCreate, FreezeRead
from release_svc.roles import ReleaseManager

router = APIRouter(tags=["freezes"])


@router.post("/freezes", status_code=201, response_model=FreezeRead)
async def schedule_freeze(
    body: FreezeCreate, user: ReleaseManager, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> FreezeRead:
    try:
        async with unit_of_work(sessions) as session:
            freeze = await service.schedule(session, outbox, body, Actor.from_request(user, request), datetime.now(UTC))
    except service.UnknownEnvironments as exc:
        raise validation_problem([{"loc": ["body", "environments"], "msg": f"unknown environment(s): {exc}"}]) from None
    return service.to_read(freeze)


@router.get("/freezes", response_model=Page[FreezeRead])
async def list_freezes(
    user: CurrentUser, sessions: SessionsDep, page: PageDep, include_lifted: bool = False, include_past: bool = False
) -> Page[FreezeRead]:
    """Current and future freezes by start (``include_past`` and ``include_lifted`` widen the list)."""
    async with sessions() as session:
        rows = await service.list_freezes(
            session,
            include_lifted=include_lifted,
            ending_after=None if include_past else datetime.now(UTC),
            after=page.after,
            limit=page.limit + 1,
        )
    return page_of([service.to_read(f) for f in rows], page, key=lambda f: [f.start.isoformat(), f.id])


@router.get("/freezes/{freeze_id}", response_model=FreezeRead)
async def get_freeze(freeze_id: str, user: CurrentUser, sessions: SessionsDep) -> FreezeRead:
    async with sessions() as session:
        freeze = await session.get(Freeze, freeze_id)
    if freeze is None:
        raise Problem(404, f"No freeze with id {freeze_id}")
    return service.to_read(freeze)


@router.delete("/freezes/{freeze_id}", status_code=204)
async def lift_freeze(
    freeze_id: str, user: ReleaseManager, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> Response:
    try:
        async with unit_of_work(sessions) as session:
            await service.lift(session, outbox, freeze_id, Actor.from_request(user, request), datetime.now(UTC))
    except service.FreezeNotFound:
        raise Problem(404, f"No active freeze with id {freeze_id}") from None
    return Response(status_code=204)
