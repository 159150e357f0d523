from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from greenzone_common.contracts.common import Timestamp

ChangeType = Literal["standard", "normal", "emergency"]
ChangeState = Literal[
    "draft", "awaiting_approval", "approved", "rejected", "implementing", "completed", "cancelled", "closed"
]
Outcome = Literal["successful", "failed", "rolled_back"]


class ChangeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    type: ChangeType
    service: str = Field(min_length=1, max_length=200)
    environment: str = Field(min_length=1, max_length=100)
    planned_start: Timestamp | None = None
    planned_end: Timestamp | None = None
    template_id: str | None = None
    release_id: str | None = None
    commits: list[str] = Field(default_factory=list, max_length=10_000)
    version: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _check(self) -> ChangeCreate:
        if self.type == "standard" and not self.template_id:
            raise ValueError("a standard change needs template_id")
        if self.planned_start and self.planned_end and self.planned_end <= self.planned_start:
            raise ValueError("planned_end must be after planned_start")
        return self


class RiskFactorRead(BaseModel):
    code: str
    points: int
    detail: str


class RiskRead(BaseModel):
    score: int
    level: Literal["low", "medium", "high"]
    factors: list[RiskFactorRead]


class ApprovalRead(BaseModel):
    by: str
    decision: Literal["approve", "reject"]
    comment: str
    at: Timestamp


class ChangeRead(BaseModel):
    id: str
    number: str
    title: str
    description: str
    type: ChangeType
    service: str
    environment: str
    state: ChangeState
    outcome: Outcome | None
    requested_by: str
    risk: RiskRead
    required_approvals: int
    approvals: list[ApprovalRead]
    auto_approved: bool
    planned_start: Timestamp | None
    planned_end: Timestamp | None
    template_id: str | None
    release_id: str | None
    version: str | None
    commits: list[str]
    review_due: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
