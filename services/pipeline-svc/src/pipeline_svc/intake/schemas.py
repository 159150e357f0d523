from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class IntakeRead(BaseModel):
    """The answer to a webhook or ``POST /events``."""

    status: Literal["accepted", "duplicate", "ignored"]
    accepted: int = 0  # deliveries (or events) stored
    duplicates: int = 0  # already received: nothing new stored
    facts: int = 0  # new facts recorded (each announced by an event)
    ids: list[str] = []  # the stored raw events' ids
