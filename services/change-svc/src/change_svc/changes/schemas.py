from __future__ import annotations

from typing import Any, Literal

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


class ApprovalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=5_000)


class ChangeComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome


class ChangeCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=5_000)


class ChangeReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=20_000)


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
    cab: bool = False
    policy: bool = Field(default=False, description="True for the auto-approval policy's decision.")


class ApprovalProgress(BaseModel):
    approvals: int
    required: int
    cab_required: bool
    cab_given: bool
    missing: int


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
    approval_progress: ApprovalProgress
    auto_approved: bool
    auto_approval_reasons: list[str]
    auto_created: bool
    evidence: dict[str, Any]
    planned_start: Timestamp | None
    planned_end: Timestamp | None
    template_id: str | None
    release_id: str | None
    version: str | None
    commits: list[str]
    review_due: Timestamp | None
    review_overdue: bool
    review_summary: str | None
    reviewed_by: str | None
    cancel_reason: str | None
    submitted_at: Timestamp | None
    decided_at: Timestamp | None
    started_at: Timestamp | None
    completed_at: Timestamp | None
    closed_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class HistoryRead(BaseModel):
    action: str
    from_state: ChangeState | None
    to_state: ChangeState
    actor: str
    at: Timestamp
    request_id: str | None
    idempotency_key: str | None
    method: str | None
    path: str | None
    trace_id: str | None
    event_type: str | None
    event_id: str | None
    details: dict[str, Any]


class StandardChangeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    services: list[str] = Field(default_factory=list, description="Empty: any service.")
    environments: list[str] = Field(default_factory=list, description="Empty: any environment.")


class StandardChangeRead(BaseModel):
    id: str
    name: str
    description: str
    services: list[str]
    environments: list[str]
    created_by: str
    created_at: Timestamp
