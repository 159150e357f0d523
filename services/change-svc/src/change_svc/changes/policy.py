"""Change enablement rules as pure functions of plain data (no I/O): they read like PRODUCT.md and API.md.

- the lifecycle: which command is legal in which state, and where it leads;
- risk: a 0-100 score, its level and every factor that produced it (with its points);
- the approval policy by risk level, with segregation of duties (the requester's own vote never counts);
- evidence-based auto-approval on submit;
- when a post-implementation review is due (two working days);
- the service's change failure rate over its recent production deployments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

PRODUCTION_NAMES = {"production", "prod", "prd"}

# --- the lifecycle ---------------------------------------------------------------------------------------------------

STATES = ("draft", "awaiting_approval", "approved", "rejected", "implementing", "completed", "cancelled", "closed")
OPEN_STATES = ("draft", "awaiting_approval", "approved", "implementing")
TERMINAL_STATES = ("rejected", "cancelled", "closed")

#: command → the states it may be applied in. ``submit`` leads to awaiting_approval or approved, ``vote`` to
#: awaiting_approval, approved or rejected (the approval policy decides); the others have one target.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "submit": ("draft",),
    "vote": ("awaiting_approval",),
    "start": ("approved",),
    "complete": ("implementing",),
    "cancel": ("draft", "awaiting_approval", "approved"),
    "review": ("completed",),
}
TARGET: dict[str, str] = {"start": "implementing", "complete": "completed", "cancel": "cancelled", "review": "closed"}


class IllegalTransition(Exception):
    """A command that the change's current state does not allow (HTTP 409 naming that state)."""

    def __init__(self, command: str, state: str) -> None:
        allowed = ", ".join(ALLOWED_FROM[command])
        super().__init__(f"Cannot {command} a change that is {state} (only when {allowed})")
        self.command = command
        self.state = state


def check_transition(command: str, state: str) -> None:
    if state not in ALLOWED_FROM[command]:
        raise IllegalTransition(command, state)


# --- risk ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskFactor:
    code: str
    points: int
    detail: str


@dataclass(frozen=True)
class TestEvidence:
    """The latest result of each test suite reported for the version (or commits) being changed."""

    __test__ = False  # not a pytest test class

    suites: int = 0
    failed_suites: int = 0
    passed: int = 0
    failed: int = 0

    @property
    def present(self) -> bool:
        return self.suites > 0

    @property
    def passing(self) -> bool:
        return self.suites > 0 and self.failed_suites == 0


@dataclass(frozen=True)
class Findings:
    """Security findings of the latest scan of each tool for the version (or commits) being changed."""

    scans: int = 0
    critical: int = 0
    high: int = 0


@dataclass(frozen=True)
class FailureRate:
    """The service's production deployments in the last 90 days and how many of them failed."""

    deployments: int = 0
    failed: int = 0

    @property
    def rate(self) -> float | None:
        return self.failed / self.deployments if self.deployments else None


@dataclass(frozen=True)
class RiskInput:
    type: str
    environment: str
    commits: int
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    #: True/False when the environment catalogue says; None falls back to the name (production, prod, prd)
    production: bool | None = None
    tests: TestEvidence = field(default_factory=TestEvidence)
    findings: Findings = field(default_factory=Findings)
    failure_rate: FailureRate = field(default_factory=FailureRate)
    #: names of the freezes that the planned window overlaps
    freezes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Risk:
    score: int
    level: str
    factors: list[RiskFactor] = field(default_factory=list)


def level_for(score: int) -> str:
    if score >= 60:
        return "high"
    if score >= 30:
        return "medium"
    return "low"


def is_production(environment: str, production: bool | None = None) -> bool:
    return production if production is not None else environment.lower() in PRODUCTION_NAMES


def assess_risk(change: RiskInput) -> Risk:
    factors: list[RiskFactor] = []
    if change.type == "emergency":
        factors.append(RiskFactor("EMERGENCY_CHANGE", 25, "emergency changes skip the usual lead time"))
    elif change.type == "normal":
        factors.append(RiskFactor("NORMAL_CHANGE", 5, "normal changes are assessed case by case"))
    if is_production(change.environment, change.production):
        factors.append(RiskFactor("PRODUCTION_ENVIRONMENT", 20, f"targets {change.environment}"))
    if change.commits > 20:
        factors.append(RiskFactor("LARGE_CHANGE", 15, f"{change.commits} commits (more than 20)"))
    elif change.commits > 5:
        factors.append(RiskFactor("MEDIUM_CHANGE", 8, f"{change.commits} commits (more than 5)"))
    if change.type != "standard" and change.planned_start is None:
        factors.append(RiskFactor("NO_PLANNED_WINDOW", 5, "no planned start given"))
    tests = change.tests
    if not tests.present:
        factors.append(RiskFactor("NO_TEST_EVIDENCE", 15, "no test results reported for this version or commits"))
    elif tests.failed_suites:
        factors.append(
            RiskFactor(
                "FAILING_TESTS",
                25,
                f"{tests.failed_suites} of {tests.suites} test suites failing ({tests.failed} failed tests)",
            )
        )
    findings = change.findings
    if findings.critical:
        factors.append(RiskFactor("CRITICAL_FINDINGS", 30, f"{findings.critical} critical security findings"))
    if findings.high:
        factors.append(RiskFactor("HIGH_FINDINGS", 15, f"{findings.high} high security findings"))
    rate = change.failure_rate.rate
    if rate is not None and rate > 0.05:
        points = 20 if rate > 0.15 else 10
        factors.append(
            RiskFactor(
                "CHANGE_FAILURE_RATE",
                points,
                f"{change.failure_rate.failed} of {change.failure_rate.deployments} production deployments "
                f"failed in the last 90 days ({rate:.0%})",
            )
        )
    if change.freezes:
        factors.append(RiskFactor("PLANNED_IN_FREEZE", 20, f"planned window overlaps {', '.join(change.freezes)}"))
    score = min(100, sum(f.points for f in factors))
    return Risk(score=score, level=level_for(score), factors=factors)


# --- approvals -------------------------------------------------------------------------------------------------------


def required_approvals(change_type: str, level: str) -> int:
    """low 1, medium 2, high 3 (one of them cab); emergency 1 cab; standard 0 (pre-approved template)."""
    if change_type == "standard":
        return 0
    if change_type == "emergency":
        return 1
    return {"low": 1, "medium": 2, "high": 3}[level]


def cab_required(change_type: str, level: str) -> bool:
    return change_type == "emergency" or (change_type == "normal" and level == "high")


@dataclass(frozen=True)
class Vote:
    by: str
    decision: str  # approve | reject
    cab: bool = False  # the voter held role cab


@dataclass(frozen=True)
class ApprovalStatus:
    state: str  # awaiting_approval | approved | rejected
    approvals: int  # distinct approvers whose approval counts
    required: int
    cab_required: bool
    cab_given: bool

    @property
    def missing(self) -> int:
        return max(0, self.required - self.approvals)


def approval_status(change_type: str, level: str, requested_by: str, votes: Sequence[Vote]) -> ApprovalStatus:
    """Where the votes so far leave a change. A rejection ends it; the requester's vote never counts and each
    approver counts once (their first decision)."""
    first: dict[str, Vote] = {}
    for vote in votes:
        if vote.by != requested_by:
            first.setdefault(vote.by, vote)
    counted = list(first.values())
    required = required_approvals(change_type, level)
    needs_cab = cab_required(change_type, level)
    approvers = [v for v in counted if v.decision == "approve"]
    cab_given = any(v.cab for v in approvers)
    if any(v.decision == "reject" for v in counted):
        state = "rejected"
    elif len(approvers) >= required and (cab_given or not needs_cab):
        state = "approved"
    else:
        state = "awaiting_approval"
    return ApprovalStatus(state, len(approvers), required, needs_cab, cab_given)


# --- evidence-based auto-approval ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutoApproval:
    approved: bool
    reasons: list[str]


def auto_approval(change_type: str, risk: Risk, tests: TestEvidence, findings: Findings) -> AutoApproval:
    """A normal, low-risk change with passing test evidence and no critical/high findings is approved by policy.
    The reasons say why it was (or was not) approved, every condition in turn."""
    checks = [
        (change_type == "normal", f"type is {change_type}" + ("" if change_type == "normal" else " (not normal)")),
        (risk.level == "low", f"risk is {risk.level} ({risk.score})"),
        (
            tests.passing,
            f"{tests.suites} test suites passing ({tests.passed} tests)"
            if tests.passing
            else ("no test evidence" if not tests.present else f"{tests.failed_suites} test suites failing"),
        ),
        (
            findings.critical == 0 and findings.high == 0,
            f"{findings.critical} critical and {findings.high} high security findings"
            + ("" if findings.scans else " (no scan reported)"),
        ),
    ]
    return AutoApproval(approved=all(ok for ok, _ in checks), reasons=[reason for _, reason in checks])


# --- reviews ---------------------------------------------------------------------------------------------------------


def add_working_days(start: datetime, days: int) -> datetime:
    """``start`` moved forward by ``days`` working days (Monday to Friday), keeping the time of day."""
    moment = start
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            left -= 1
    return moment


def review_due(change_type: str, outcome: str, completed_at: datetime) -> datetime | None:
    """Emergency changes, and changes that failed or were rolled back, need a review within two working days."""
    if change_type == "emergency" or outcome in ("failed", "rolled_back"):
        return add_working_days(completed_at, 2)
    return None


# --- facts behind the risk -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    at: datetime
    outcome: str  # success | failure


def failure_rate(deployments: Iterable[Deployment], rollbacks: Iterable[datetime]) -> FailureRate:
    """A deployment failed when its outcome is failure, or a rollback followed it before the next successful one."""
    ordered = sorted(deployments, key=lambda d: d.at)
    backs = sorted(rollbacks)
    failed = 0
    for i, deployment in enumerate(ordered):
        if deployment.outcome != "success":
            failed += 1
            continue
        next_success = next((d.at for d in ordered[i + 1 :] if d.outcome == "success"), None)
        if any(deployment.at <= r and (next_success is None or r < next_success) for r in backs):
            failed += 1
    return FailureRate(deployments=len(ordered), failed=failed)


@dataclass(frozen=True)
class Window:
    id: str
    service: str
    environment: str
    start: datetime
    end: datetime


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def conflicts(windows: Sequence[Window]) -> dict[str, list[str]]:
    """Changes on the same service and environment whose planned windows overlap, by change id."""
    found: dict[str, list[str]] = {w.id: [] for w in windows}
    by_target: dict[tuple[str, str], list[Window]] = {}
    for w in windows:
        by_target.setdefault((w.service, w.environment), []).append(w)
    for group in by_target.values():
        group.sort(key=lambda w: w.start)
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if b.start >= a.end:
                    break
                found[a.id].append(b.id)
                found[b.id].append(a.id)
    return found


@dataclass(frozen=True)
class Freeze:
    id: str
    name: str
    start: datetime
    end: datetime
    environments: tuple[str, ...]
    services: tuple[str, ...] = ()  # empty: every service

    def covers(self, service: str, environment: str) -> bool:
        return environment in self.environments and (not self.services or service in self.services)


def freezes_hit(
    service: str, environment: str, start: datetime, end: datetime, freezes: Iterable[Freeze]
) -> list[Freeze]:
    return [f for f in freezes if f.covers(service, environment) and overlaps(start, end, f.start, f.end)]


# --- reporting figures -----------------------------------------------------------------------------------------------

AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("<1d", timedelta(days=1)),
    ("1-3d", timedelta(days=3)),
    ("3-7d", timedelta(days=7)),
    ("7-30d", timedelta(days=30)),
    (">30d", None),
)


def age_bucket(age: timedelta) -> str:
    for name, limit in AGE_BUCKETS:
        if limit is None or age < limit:
            return name
    raise AssertionError("unreachable")


def success_score(outcomes: Iterable[str]) -> float | None:
    """Completed changes with outcome successful ÷ all completed changes (None when there is none)."""
    values = list(outcomes)
    if not values:
        return None
    return sum(1 for o in values if o == "successful") / len(values)
