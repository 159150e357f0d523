from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from greenzone_common.contracts.common import Timestamp


class ServiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    repositories: list[str] = Field(default_factory=list, max_length=100)
    artifacts: list[str] = Field(default_factory=list, max_length=100)
    team: str | None = Field(default=None, max_length=200)


class ServiceRead(BaseModel):
    name: str
    repositories: list[str]
    artifacts: list[str]
    team: str | None
    auto_registered: bool
    created_at: Timestamp
    updated_at: Timestamp
