"""The release calendar: releases and their milestones, deployment windows, freezes and planned changes.

JSON expands each window into its openings in the requested range; iCalendar (RFC 5545) gives each window as one
recurring event (``RRULE:FREQ=WEEKLY``) in its own time zone with its VTIMEZONE, so calendar clients follow the
daylight saving changes themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vRecur
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from release_svc.calendar.schemas import CalendarItem
from release_svc.freezes.models import Freeze
from release_svc.projections.models import ChangeView
from release_svc.releases.models import Release
from release_svc.windows import service as windows
from release_svc.windows.models import Window
from release_svc.windows.policy import DAYS, occurrences

MILESTONES = ("build", "deploy", "els_end", "closure")
ICAL_DAYS = {"mon": "MO", "tue": "TU", "wed": "WE", "thu": "TH", "fri": "FR", "sat": "SA", "sun": "SU"}
UID_DOMAIN = "greenzone.release-svc"


def _milestone_times(release: Release) -> dict[str, datetime]:
    return {name: datetime.fromisoformat(value) for name, value in release.milestones.items() if value}


async def _releases(session: AsyncSession) -> list[Release]:
    return list((await session.execute(select(Release).where(Release.state != "cancelled"))).scalars())


async def _freezes(session: AsyncSession, start: datetime, end: datetime) -> list[Freeze]:
    stmt = select(Freeze).where(Freeze.lifted_at.is_(None), Freeze.start < end, Freeze.end > start)
    return list((await session.execute(stmt.order_by(Freeze.start))).scalars())


async def _changes(session: AsyncSession, start: datetime, end: datetime) -> list[ChangeView]:
    stmt = select(ChangeView).where(
        ChangeView.planned_start.is_not(None),
        ChangeView.planned_end.is_not(None),
        ChangeView.state.not_in(["cancelled", "rejected"]),
        and_(ChangeView.planned_start < end, ChangeView.planned_end > start),
    )
    return list((await session.execute(stmt.order_by(ChangeView.planned_start))).scalars())


async def items(session: AsyncSession, start: datetime, end: datetime) -> list[CalendarItem]:
    result: list[CalendarItem] = []
    for release in await _releases(session):
        times = _milestone_times(release)
        for name, at in times.items():
            if start <= at < end:
                result.append(
                    CalendarItem(
                        kind="milestone",
                        id=f"{release.id}:{name}",
                        title=f"{release.name} {release.version}: {name}",
                        start=at,
                        end=at,
                        services=release.services,
                        release_id=release.id,
                        state=release.state,
                    )
                )
        if times:
            first, last = min(times.values()), max(times.values())
            if first < end and last >= start:
                result.append(
                    CalendarItem(
                        kind="release",
                        id=release.id,
                        title=f"{release.name} {release.version}",
                        start=first,
                        end=last,
                        services=release.services,
                        release_id=release.id,
                        state=release.state,
                    )
                )
    for window in (await session.execute(select(Window))).scalars():
        for opens, closes in occurrences(windows.rule(window), start, end):
            result.append(
                CalendarItem(
                    kind="window",
                    id=window.id,
                    title=f"Deployment window: {window.environment}",
                    start=opens,
                    end=closes,
                    environment=window.environment,
                    detail=f"{','.join(window.days)} {window.start:%H:%M}-{window.end:%H:%M} {window.timezone}",
                )
            )
    for freeze in await _freezes(session, start, end):
        result.append(
            CalendarItem(
                kind="freeze",
                id=freeze.id,
                title=f"Freeze: {freeze.name}",
                start=freeze.start,
                end=freeze.end,
                environments=freeze.environments,
                services=freeze.services,
                detail=freeze.reason,
            )
        )
    for change in await _changes(session, start, end):
        assert change.planned_start is not None and change.planned_end is not None
        result.append(
            CalendarItem(
                kind="change",
                id=change.change_id,
                title=f"{change.number or 'Change'}: {change.title or change.service}",
                start=change.planned_start,
                end=change.planned_end,
                environment=change.environment,
                services=[change.service],
                release_id=change.release_id,
                state=change.state,
            )
        )
    result.sort(key=lambda i: (i.start, i.kind, i.id))
    return result


def _first_opening(window: Window, on_or_after: datetime) -> datetime:
    """The window's first opening day on or after a date, as a local aware datetime (the DTSTART)."""
    zone = ZoneInfo(window.timezone)
    day = on_or_after.astimezone(zone).date()
    while DAYS[day.weekday()] not in window.days:
        day += timedelta(days=1)
    return datetime.combine(day, window.start, tzinfo=zone)


async def ics(session: AsyncSession, start: datetime, end: datetime) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//Greenzone//release-svc//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "Greenzone releases")
    stamp = datetime.now(UTC)
    for item in await items(session, start, end):
        if item.kind == "window":
            continue  # windows go in once each, as recurring events, below
        event = Event()
        event.add("uid", f"{item.kind}-{item.id}@{UID_DOMAIN}")
        event.add("dtstamp", stamp)
        event.add("summary", item.title)
        event.add("dtstart", item.start)
        event.add("dtend", item.end if item.end > item.start else item.start + timedelta(minutes=15))
        event.add("categories", [item.kind])
        description = item.detail or ", ".join(item.services)
        if description:
            event.add("description", description)
        if item.kind == "freeze":
            event.add("transp", "OPAQUE")
        cal.add_component(event)
    for window in (await session.execute(select(Window).order_by(Window.id))).scalars():
        opens = _first_opening(window, min(start, window.created_at))
        closes_day = opens.date() + timedelta(days=1) if window.end <= window.start else opens.date()
        event = Event()
        event.add("uid", f"window-{window.id}@{UID_DOMAIN}")
        event.add("dtstamp", stamp)
        event.add("summary", f"Deployment window: {window.environment}")
        event.add("dtstart", opens)
        event.add("dtend", datetime.combine(closes_day, window.end, tzinfo=opens.tzinfo))
        event.add("rrule", vRecur(freq="WEEKLY", byday=[ICAL_DAYS[d] for d in window.days]))
        event.add("categories", ["window"])
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()
