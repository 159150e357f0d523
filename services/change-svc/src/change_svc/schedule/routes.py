from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from change_svc.schedule import service
from change_svc.schedule.schemas import AgendaItem, BacklogAgeing, ReviewItem, Schedule, SuccessScore
from greenzone_common.auth import CurrentUser
from greenzone_common.contracts.common import Timestamp
from greenzone_common.pagination import PageDep
from greenzone_common.problems import Problem
from greenzone_common.service import SessionsDep

router = APIRouter(tags=["schedule"])


@router.get("/schedule", response_model=Schedule, response_model_by_alias=True)
async def get_schedule(
    user: CurrentUser,
    sessions: SessionsDep,
    page: PageDep,
    from_: Annotated[Timestamp | None, Query(alias="from", description="Default: now")] = None,
    to: Annotated[Timestamp | None, Query(description="Default: 30 days after from")] = None,
) -> Schedule:
    start = from_ or datetime.now(UTC)
    end = to or start + timedelta(days=30)
    if end <= start:
        raise Problem(400, "'to' must be after 'from'", slug="invalid-period")
    async with sessions() as session:
        return await service.schedule(session, start, end, page)


@router.get("/cab/agenda", response_model=list[AgendaItem])
async def cab_agenda(user: CurrentUser, sessions: SessionsDep) -> list[AgendaItem]:
    async with sessions() as session:
        return await service.cab_agenda(session, datetime.now(UTC))


@router.get("/reviews", response_model=list[ReviewItem])
async def reviews(user: CurrentUser, sessions: SessionsDep, overdue: bool = False) -> list[ReviewItem]:
    """Post-implementation reviews due (emergency, failed and rolled-back changes); ``?overdue=true`` lists only
    those past their due time."""
    async with sessions() as session:
        return await service.reviews(session, datetime.now(UTC), overdue_only=overdue)


@router.get("/backlog/ageing", response_model=BacklogAgeing)
async def backlog_ageing(
    user: CurrentUser, sessions: SessionsDep, service_: Annotated[str | None, Query(alias="service")] = None
) -> BacklogAgeing:
    async with sessions() as session:
        return await service.backlog_ageing(session, datetime.now(UTC), service_)


@router.get("/change-success", response_model=list[SuccessScore])
async def change_success(
    user: CurrentUser, sessions: SessionsDep, service_: Annotated[str | None, Query(alias="service")] = None
) -> list[SuccessScore]:
    """Change success score per service (METRICS.md): successful ÷ completed changes in the last 90 days."""
    async with sessions() as session:
        return await service.success_scores(session, datetime.now(UTC), service_)
