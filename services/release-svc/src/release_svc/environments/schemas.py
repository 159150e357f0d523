from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from greenzone_common.contracts.common import Timestamp
from release_svc.environments.policy import canonical_environment


class EnvironmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    rank: int = Field(ge=0, le=1_000_000)
    protected: bool = False
    production: bool = False

    @field_validator("name")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_environment(value)


class EnvironmentRead(BaseModel):
    name: str
    rank: int
    protected: bool
    production: bool
    created_at: Timestamp
    updated_at: Timestamp
