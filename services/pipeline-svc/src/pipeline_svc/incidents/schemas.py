from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from greenzone_common.contracts.common import Timestamp


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=200)
    environment: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=500)
    severity: str = Field(default="high", min_length=1, max_length=40)
    detected_at: Timestamp | None = None  # default: now
    version: str | None = Field(default=None, max_length=200)
    commit: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, max_length=2000)


class IncidentResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolved_at: Timestamp | None = None  # default: now


class IncidentRead(BaseModel):
    id: str
    service: str
    environment: str
    title: str | None
    severity: str | None
    version: str | None
    commit: str | None
    detected_at: Timestamp | None
    resolved_at: Timestamp | None
    state: str  # open | resolved
    source: str
    url: str | None
    reported_by: str | None
