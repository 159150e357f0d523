"""Types and nested values shared by several event data models.

Closed vocabularies that API.md fixes (change type and state, outcomes, gate decision and reason codes) are
``Literal`` types spelled exactly as there. Open-ended ones that tools feed (where an event came from, an
incident's severity) stay ``str``: adding a value to a ``Literal`` would make every ``v1`` consumer reject it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: A point in time. A naive datetime is rejected (a time without a zone is ambiguous across services);
#: an aware one is normalised to UTC, so it serialises with ``Z`` like the HTTP API.
Timestamp = Annotated[AwareDatetime, AfterValidator(_as_utc)]

#: An identifier: an aggregate id, a service or environment name. Never empty, since it may be a Kafka key.
Id = Annotated[str, Field(min_length=1)]

ChangeType = Literal["standard", "normal", "emergency"]
ChangeState = Literal[
    "draft", "awaiting_approval", "approved", "rejected", "implementing", "completed", "cancelled", "closed"
]
ChangeOutcome = Literal["successful", "failed", "rolled_back"]
RiskLevel = Literal["low", "medium", "high"]
ApprovalDecision = Literal["approve", "reject"]
ReleaseState = Literal["planned", "in_progress", "deployed", "early_life_support", "closed", "cancelled"]
DeploymentOutcome = Literal["success", "failure"]
#: The outcome of a pipeline run or a test suite, as CDEvents spells it.
RunOutcome = Literal["success", "failure", "cancel", "error"]
GateDecision = Literal["allow", "deny"]
GateReasonCode = Literal[
    "NO_APPROVED_CHANGE",
    "FREEZE_ACTIVE",
    "OUTSIDE_DEPLOYMENT_WINDOW",
    "PROMOTION_ORDER",
    "QUALITY_GATE_FAILED",
    "SECURITY_GATE_FAILED",
    "EMERGENCY_OVERRIDE",
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class EventPart(BaseModel):
    """A value nested in event data: immutable and tolerant of unknown fields, like the data itself."""

    model_config = ConfigDict(extra="allow", frozen=True)


class RiskFactor(EventPart):
    """One reason a change's risk score went up."""

    code: str
    points: int
    detail: str = ""


class Risk(EventPart):
    """A change's risk: a score from 0 to 100, its level and the factors that produced it."""

    score: int = Field(ge=0, le=100)
    level: RiskLevel
    factors: list[RiskFactor] = []


class Approval(EventPart):
    """One approver's decision on a change."""

    by: Id
    decision: ApprovalDecision
    comment: str = ""
    at: Timestamp


class PlannedWindow(EventPart):
    """When a change is planned to be implemented."""

    start: Timestamp
    end: Timestamp


class TestCounts(EventPart):
    """How many tests of a suite passed, failed and were skipped."""

    __test__: ClassVar[bool] = False  # not a pytest test class, whatever its name

    passed: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    skipped: int = Field(default=0, ge=0)


class FindingsBySeverity(EventPart):
    """How many security findings a scan reported at each severity."""

    critical: int = Field(default=0, ge=0)
    high: int = Field(default=0, ge=0)
    medium: int = Field(default=0, ge=0)
    low: int = Field(default=0, ge=0)
    note: int = Field(default=0, ge=0)


class Commit(EventPart):
    """A commit, with the time its author made it."""

    sha: Id
    timestamp: Timestamp
    message: str | None = None
    author: str | None = None
    url: str | None = None


class GateReason(EventPart):
    """Why the gate decided as it did."""

    code: GateReasonCode
    message: str
