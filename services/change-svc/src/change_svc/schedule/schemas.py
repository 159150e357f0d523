from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from change_svc.changes.schemas import ChangeState, ChangeType
from greenzone_common.contracts.common import Timestamp


class FreezeRef(BaseModel):
    id: str
    name: str
    start: Timestamp
    end: Timestamp


class ConflictRef(BaseModel):
    id: str
    number: str
    title: str
    state: ChangeState
    planned_start: Timestamp
    planned_end: Timestamp


class ScheduledChange(BaseModel):
    id: str
    number: str
    title: str
    type: ChangeType
    service: str
    environment: str
    state: ChangeState
    risk_level: str
    planned_start: Timestamp
    planned_end: Timestamp
    conflicts: list[ConflictRef]
    freezes: list[FreezeRef]


class Schedule(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: Timestamp = Field(alias="from")
    to: Timestamp
    items: list[ScheduledChange]
    freezes: list[FreezeRef]
    next_cursor: str | None = None


class AgendaItem(BaseModel):
    id: str
    number: str
    title: str
    type: ChangeType
    service: str
    environment: str
    requested_by: str
    risk_score: int
    risk_level: str
    required_approvals: int
    approvals: int
    cab_required: bool
    cab_given: bool
    submitted_at: Timestamp | None
    age_hours: float
    planned_start: Timestamp | None


class ReviewItem(BaseModel):
    id: str
    number: str
    title: str
    type: ChangeType
    service: str
    outcome: str | None
    completed_at: Timestamp | None
    review_due: Timestamp
    overdue: bool


class AgeingBucket(BaseModel):
    bucket: str
    count: int
    by_state: dict[str, int]


class BacklogAgeing(BaseModel):
    as_of: Timestamp
    open: int
    buckets: list[AgeingBucket]
    oldest: list[dict[str, Any]]


class SuccessScore(BaseModel):
    service: str
    window_days: int
    completed: int
    successful: int
    score: float | None
