"""Deployment windows: weekly slots in local time of an IANA time zone.

A window is evaluated in its own zone with ``zoneinfo`` (never with a fixed UTC offset), so "09:00-16:00
Europe/London" means 09:00 GMT in winter and 09:00 BST in summer. A window whose end is not after its start
spans midnight: it opens on its listed days and closes on the next day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WindowRule:
    days: tuple[str, ...]
    start: time
    end: time
    timezone: str

    @property
    def overnight(self) -> bool:
        return self.end <= self.start


def is_open(window: WindowRule, at: datetime) -> bool:
    """Whether ``at`` (an aware time) falls inside the window."""
    local = at.astimezone(ZoneInfo(window.timezone))
    day = DAYS[local.weekday()]
    now = local.time().replace(tzinfo=None)
    if not window.overnight:
        return day in window.days and window.start <= now < window.end
    yesterday = DAYS[(local.weekday() - 1) % 7]
    return (day in window.days and now >= window.start) or (yesterday in window.days and now < window.end)


def any_open(windows: Sequence[WindowRule], at: datetime) -> bool:
    """No window means always open."""
    return not windows or any(is_open(w, at) for w in windows)


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A local wall time as an aware UTC time; a wall time skipped by a DST jump maps to just after the jump."""
    naive = datetime.combine(day, at)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # Inside the spring-forward gap: the first instant whose wall time is not before ``naive`` is the jump itself,
    # between the two readings of the wall time (fold=1 reads it with the offset after the jump).
    low, high = naive.replace(tzinfo=zone, fold=1).astimezone(UTC), instant
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def occurrences(window: WindowRule, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Every opening of the window that overlaps [start, end), in UTC."""
    zone = ZoneInfo(window.timezone)
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    result: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        if DAYS[day.weekday()] in window.days:
            opens = _local(day, window.start, zone)
            closes = _local(day + timedelta(days=1) if window.overnight else day, window.end, zone)
            if opens < end and closes > start:
                result.append((opens, closes))
        day += timedelta(days=1)
    return result
