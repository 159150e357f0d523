from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from change_svc.changes import service
from change_svc.changes.schemas import ChangeCreate, ChangeRead
from greenzone_common.auth import CurrentUser, Principal, RequireRole
from greenzone_common.db import unit_of_work
from greenzone_common.problems import Problem
from greenzone_common.service import OutboxDep, SessionsDep

router = APIRouter(tags=["changes"])

Requester = Annotated[Principal, RequireRole("requester", "release_manager", "pipeline", "admin")]


@router.post("/changes", status_code=201, response_model=ChangeRead)
async def create_change(body: ChangeCreate, user: Requester, sessions: SessionsDep, outbox: OutboxDep) -> ChangeRead:
    async with unit_of_work(sessions) as session:
        change = await service.create_change(session, outbox, body, user)
    return service.to_read(change)


@router.get("/changes/{change_id}", response_model=ChangeRead)
async def get_change(change_id: str, user: CurrentUser, sessions: SessionsDep) -> ChangeRead:
    async with sessions() as session:
        try:
            change = await service.get_change(session, change_id)
        except service.ChangeNotFound:
            raise Problem(404, f"No change with id {change_id}") from None
    return service.to_read(change)
