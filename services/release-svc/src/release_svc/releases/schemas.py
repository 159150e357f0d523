from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from greenzone_common.contracts.common import Timestamp
from release_svc.environments.policy import canonical_environment
from release_svc.gates.schemas import GateDecisionRead

ReleaseState = Literal["planned", "in_progress", "deployed", "early_life_support", "closed", "cancelled"]


class MilestonesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    build: Timestamp | None = None
    deploy: Timestamp | None = None
    els_end: Timestamp | None = None
    closure: Timestamp | None = None


class ReleaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)
    services: list[str] = Field(min_length=1, max_length=100)
    changes: list[str] = Field(default_factory=list, max_length=1000)
    milestones: MilestonesBody = Field(default_factory=MilestonesBody)
    notify: list[AnyHttpUrl] = Field(default_factory=list, max_length=50)
    depends_on: list[str] = Field(default_factory=list, max_length=100)


class ReleaseUpdate(BaseModel):
    """A schedule change: new milestones (omitted ones stay)."""

    model_config = ConfigDict(extra="forbid")

    milestones: MilestonesBody


class ReleaseChangeAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    change_id: str = Field(min_length=1, max_length=64)


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: str = Field(min_length=1, max_length=100)
    commit: str | None = Field(default=None, max_length=100)
    outcome: Literal["success", "failure"] = "success"

    @field_validator("environment")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_environment(value)


class RollbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: str = Field(min_length=1, max_length=100)
    reason: str = Field(default="", max_length=2000)

    @field_validator("environment")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_environment(value)


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class DeploymentRead(BaseModel):
    id: str
    service: str
    environment: str
    version: str | None
    commit: str | None
    outcome: Literal["success", "failure"]
    at: Timestamp
    source: str
    decision_id: str | None


class RollbackRead(BaseModel):
    id: str
    service: str
    environment: str
    at: Timestamp
    reason: str
    source: str


class ReleaseRead(BaseModel):
    id: str
    name: str
    version: str
    services: list[str]
    changes: list[str]
    milestones: MilestonesBody
    notify: list[str]
    depends_on: list[str]
    state: ReleaseState
    els_started_at: Timestamp | None
    els_ends_at: Timestamp | None
    closed_at: Timestamp | None
    closed_by: str | None
    created_by: str | None
    created_at: Timestamp
    updated_at: Timestamp
    deployments: list[DeploymentRead] = []
    rollbacks: list[RollbackRead] = []


class ReleaseCreated(ReleaseRead):
    notify_secret: str = Field(
        description="The HMAC-SHA256 key of this release's webhook signatures (X-Greenzone-Signature-256). "
        "Shown once, here."
    )


class DeploymentResult(BaseModel):
    release: ReleaseRead
    deployments: list[DeploymentRead]
    decisions: list[GateDecisionRead]
