from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from greenzone_common.contracts.common import Timestamp

CalendarKind = Literal["release", "milestone", "window", "freeze", "change"]


class CalendarItem(BaseModel):
    kind: CalendarKind
    id: str
    title: str
    start: Timestamp
    end: Timestamp
    environment: str | None = None
    environments: list[str] = []
    services: list[str] = []
    release_id: str | None = None
    state: str | None = None
    detail: str = ""
