from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from greenzone_common.auth import CurrentUser
from greenzone_common.problems import Problem
from greenzone_common.service import SessionsDep
from release_svc.calendar import service
from release_svc.calendar.schemas import CalendarItem

router = APIRouter(tags=["calendar"])

MAX_RANGE = timedelta(days=400)
From = Annotated[datetime | None, Query(alias="from", description="Default: 7 days ago")]
To = Annotated[datetime | None, Query(description="Default: 90 days after from")]


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    for value, name in ((start, "from"), (end, "to")):
        if value is not None and value.tzinfo is None:
            raise Problem(
                422,
                f"{name} needs a time zone (e.g. Z)",
                slug="validation-error",
                errors=[{"loc": ["query", name], "msg": "a time zone is required"}],
            )
    start = (start or datetime.now(UTC) - timedelta(days=7)).astimezone(UTC)
    end = (end or start + timedelta(days=90)).astimezone(UTC)
    if end <= start:
        raise Problem(
            422,
            "to must be after from",
            slug="validation-error",
            errors=[{"loc": ["query", "to"], "msg": "must be after from"}],
        )
    if end - start > MAX_RANGE:
        raise Problem(
            422,
            "The range is limited to 400 days",
            slug="validation-error",
            errors=[{"loc": ["query", "to"], "msg": "at most 400 days after from"}],
        )
    return start, end


@router.get("/calendar")
async def calendar(user: CurrentUser, sessions: SessionsDep, start: From = None, to: To = None) -> dict[str, object]:
    begin, end = _range(start, to)
    async with sessions() as session:
        found = await service.items(session, begin, end)
    return {
        "from": begin.isoformat().replace("+00:00", "Z"),
        "to": end.isoformat().replace("+00:00", "Z"),
        "items": [CalendarItem.model_validate(i).model_dump(mode="json") for i in found],
    }


@router.get("/calendar.ics", response_class=Response)
async def calendar_ics(user: CurrentUser, sessions: SessionsDep, start: From = None, to: To = None) -> Response:
    begin, end = _range(start, to)
    async with sessions() as session:
        body = await service.ics(session, begin, end)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="greenzone.ics"'},
    )
