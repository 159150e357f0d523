"""The ``from``/``to`` query parameters every figure takes: a half-open period [from, to), 30 days by default."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query

from greenzone_common.problems import Problem

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise Problem(
            422,
            f"'{name}' needs a time zone (e.g. 2026-03-01T00:00:00Z)",
            errors=[{"loc": ["query", name], "msg": "a time zone is required"}],
        )
    return value.astimezone(UTC)


def period(
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
) -> Period:
    end = _aware(to, "to") if to is not None else datetime.now(UTC)
    start = _aware(from_, "from") if from_ is not None else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise Problem(
            422, "'from' must be before 'to'", errors=[{"loc": ["query", "from"], "msg": "must be before 'to'"}]
        )
    return Period(start, end)


PeriodDep = Annotated[Period, Depends(period)]
