from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from greenzone_common.contracts.common import Timestamp, Weekday
from release_svc.environments.policy import canonical_environment


class WindowCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: str = Field(min_length=1, max_length=100)
    days: list[Weekday] = Field(min_length=1, max_length=7)
    start: time
    end: time
    timezone: str = Field(min_length=1, max_length=64)

    @field_validator("environment")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_environment(value)

    @field_validator("days")
    @classmethod
    def _unique(cls, value: list[Weekday]) -> list[Weekday]:
        return list(dict.fromkeys(value))

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("a local time of day without an offset (the window's timezone gives it)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value


class WindowRead(BaseModel):
    id: str
    environment: str
    days: list[Weekday]
    start: str
    end: str
    timezone: str
    created_at: Timestamp
