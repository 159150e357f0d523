"""Events of a change request, published by change-svc on ``greenzone.change`` and keyed by the change id.

Every change event repeats the change's number, type, service and environment, so a consumer can act on any
one of them without having seen the others (release-svc's gate only needs to know which changes are approved).
"""

from __future__ import annotations

from pydantic import Field

from greenzone_common.contracts.base import CHANGE_TOPIC, EventData, event
from greenzone_common.contracts.common import (
    Approval,
    ApprovalDecision,
    ChangeOutcome,
    ChangeState,
    ChangeType,
    Id,
    PlannedWindow,
    Risk,
    Timestamp,
)


class ChangeEventData(EventData):
    """Fields every change event carries."""

    change_id: Id
    number: str = Field(description="The human-facing number, e.g. CHG-000042.")
    type: ChangeType
    service: Id
    environment: Id


class ChangeApprovalData(ChangeEventData):
    """Fields of the events that decide whether a change may go ahead."""

    required_approvals: int = Field(ge=0)
    approvals: list[Approval] = Field(default=[], description="The approvals so far.")
    auto_approved: bool = False
    auto_approval_reasons: list[str] = Field(
        default=[], description="Why the auto-approval policy approved (or did not approve) the change."
    )


def _window(start: Timestamp | None, end: Timestamp | None) -> PlannedWindow | None:
    if start is None or end is None:
        return None
    return PlannedWindow(start=start, end=end)


@event("dev.greenzone.change.created.v1", topic=CHANGE_TOPIC, key="change_id")
class ChangeCreated(ChangeEventData):
    """A change request was raised (by a person, or automatically for a deployment the gate refused)."""

    # No ``description``: that name is EventData's class-level description of the event type.
    title: str
    requested_by: Id
    planned_start: Timestamp | None = None
    planned_end: Timestamp | None = None
    version: str | None = None
    commits: list[str] = Field(default=[], description="The commit SHAs the change delivers.")
    risk: Risk
    template_id: str | None = None
    release_id: str | None = None
    auto_created: bool = Field(
        default=False, description="Created by the gate for a protected deployment that had no change."
    )
    gate_decision_id: str | None = Field(default=None, description="The gate decision that drafted it, if any.")
    state: ChangeState = "draft"
    created_at: Timestamp

    @property
    def planned_window(self) -> PlannedWindow | None:
        return _window(self.planned_start, self.planned_end)


@event("dev.greenzone.change.submitted.v1", topic=CHANGE_TOPIC, key="change_id")
class ChangeSubmitted(ChangeApprovalData):
    """A change was submitted for approval."""

    state: ChangeState = Field(description="awaiting_approval, or approved for a standard or auto-approved one.")
    submitted_by: Id
    submitted_at: Timestamp


@event("dev.greenzone.change.approved.v1", topic=CHANGE_TOPIC, key="change_id")
class ChangeApproved(ChangeApprovalData):
    """A change was approved: by enough approvers, by its standard template or by the auto-approval policy."""

    version: str | None = None
    planned_start: Timestamp | None = None
    planned_end: Timestamp | None = None
    release_id: str | None = None
    approved_at: Timestamp

    @property
    def planned_window(self) -> PlannedWindow | None:
        return _window(self.planned_start, self.planned_end)


@event("dev.greenzone.change.approval.recorded.v1", topic=CHANGE_TOPIC, key="change_id")
class ChangeApprovalRecorded(ChangeApprovalData):
    """An approver's decision was recorded; when it decided the change, approved or rejected follows."""

    state: ChangeState = Field(description="The change's state after this decision.")
    by: Id
    decision: ApprovalDecision
    comment: str = ""
    recorded_at: Timestamp


@event("dev.greenzone.change.rejected.v1", topic=CHANGE_TOPIC, key="change_id")
class ChangeRejected(ChangeApprovalData):
    """A change was rejected by an approver."""

    rejected_by: Id
    comment: str = ""
    rejected_at: Timestamp


@event("dev.greenzone.change.started.v1", topic=CHANGE_TOPIC, key="change_id")
class ChangeStarted(ChangeEventData):
    """Implementation of a change started."""

    version: str | None = None
    release_id: str | None = None
    started_by: str | None = Field(default=None, description="None when a deployment started it.")
    started_at: Timestamp


@event("dev.greenzone.change.completed.v1", topic=CHANGE_TOPIC, key="change_id")
class ChangeCompleted(ChangeEventData):
    """Implementation of a change finished, successfully or not."""

    outcome: ChangeOutcome
    version: str | None = None
    release_id: str | None = None
    completed_by: str | None = Field(default=None, description="None when a deployment completed it.")
    review_due: Timestamp | None = Field(default=None, description="When its post-implementation review is due.")
    previous_outcome: ChangeOutcome | None = Field(
        default=None,
        description="Set when a later fact corrected the outcome (a rollback after a successful deployment): the "
        "latest completed event of a change carries its outcome.",
    )
    deployment_ref: str | None = Field(
        default=None, description="The deployment that completed it: '<source>:<id>' or 'release:<release id>'."
    )
    completed_at: Timestamp


@event("dev.greenzone.change.cancelled.v1", topic=CHANGE_TOPIC, key="change_id")
class ChangeCancelled(ChangeEventData):
    """A change was cancelled before it was implemented."""

    reason: str = ""
    cancelled_by: str | None = None
    cancelled_at: Timestamp


@event("dev.greenzone.change.closed.v1", topic=CHANGE_TOPIC, key="change_id")
class ChangeClosed(ChangeEventData):
    """A change was closed; nothing more will happen to it."""

    outcome: ChangeOutcome | None = None
    closed_by: str | None = None
    closed_at: Timestamp


@event("dev.greenzone.change.reviewed.v1", topic=CHANGE_TOPIC, key="change_id")
class ChangeReviewed(ChangeEventData):
    """The post-implementation review of a change was recorded."""

    summary: str
    reviewed_by: Id
    reviewed_at: Timestamp
