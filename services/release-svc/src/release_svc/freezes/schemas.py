from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from greenzone_common.contracts.common import Timestamp
from release_svc.environments.policy import canonical_environment


class FreezeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    start: Timestamp
    end: Timestamp
    environments: list[str] = Field(min_length=1, max_length=100)
    services: list[str] = Field(default_factory=list, max_length=1000, description="Empty means every service.")
    reason: str = Field(default="", max_length=2000)

    @field_validator("environments")
    @classmethod
    def _canonical(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(canonical_environment(v) for v in value))

    @model_validator(mode="after")
    def _period(self) -> FreezeCreate:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class FreezeRead(BaseModel):
    id: str
    name: str
    start: Timestamp
    end: Timestamp
    environments: list[str]
    services: list[str]
    reason: str
    created_by: str | None
    created_at: Timestamp
    lifted_at: Timestamp | None
    lifted_by: str | None
