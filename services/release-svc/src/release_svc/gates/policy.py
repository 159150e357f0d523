"""The gate: may service S at version V go to environment E now?

A pure function of the request, a snapshot of release-svc's local projections and the time. The rules (API.md):

- any environment is denied during a freeze that covers it (FREEZE_ACTIVE);
- a protected environment also needs
  - an approved (or implementing) change for the service and environment (NO_APPROVED_CHANGE),
  - a time inside one of its windows, when it has windows (OUTSIDE_DEPLOYMENT_WINDOW),
  - the same version (or commit) deployed successfully to the next-lower-ranked environment (PROMOTION_ORDER),
  - no failed latest test suite for that version or commit (QUALITY_GATE_FAILED),
  - no critical or high security finding for that version or commit (SECURITY_GATE_FAILED);
- an approved emergency change lifts the freeze, window and promotion rules (EMERGENCY_OVERRIDE on allow),
  never the quality and security ones;
- a denied protected deployment with no open change asks for a draft change to be created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from release_svc.windows.policy import WindowRule, any_open

GO_STATES = frozenset({"approved", "implementing"})
OPEN_STATES = frozenset({"draft", "awaiting_approval", "approved", "implementing"})
FAILED_TEST_OUTCOMES = frozenset({"failure", "error"})

#: Deny reasons in the order they are reported.
DENY_ORDER = (
    "NO_APPROVED_CHANGE",
    "FREEZE_ACTIVE",
    "OUTSIDE_DEPLOYMENT_WINDOW",
    "PROMOTION_ORDER",
    "QUALITY_GATE_FAILED",
    "SECURITY_GATE_FAILED",
)
#: What an approved emergency change lifts.
LIFTABLE = frozenset({"FREEZE_ACTIVE", "OUTSIDE_DEPLOYMENT_WINDOW", "PROMOTION_ORDER"})


@dataclass(frozen=True)
class GateRequest:
    service: str
    environment: str  # canonical name
    version: str | None = None
    commit: str | None = None
    change_id: str | None = None


@dataclass(frozen=True)
class EnvironmentInfo:
    name: str
    rank: int
    protected: bool
    production: bool


@dataclass(frozen=True)
class ChangeInfo:
    change_id: str
    type: str
    service: str
    environment: str
    state: str
    number: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class FreezeInfo:
    freeze_id: str
    name: str
    start: datetime
    end: datetime
    environments: tuple[str, ...]
    services: tuple[str, ...] = ()
    reason: str = ""

    def covers(self, service: str, environment: str, at: datetime) -> bool:
        in_scope = environment in self.environments and (not self.services or service in self.services)
        return in_scope and self.start <= at < self.end


@dataclass(frozen=True)
class SuiteResult:
    suite: str | None
    outcome: str


@dataclass(frozen=True)
class ScanResult:
    tool: str | None
    critical: int = 0
    high: int = 0


@dataclass(frozen=True)
class Snapshot:
    """What the projections say, for one request."""

    environment: EnvironmentInfo | None  # None: unknown to the catalogue (not protected)
    lower_environment: str | None = None  # the next-lower-ranked environment, None for the lowest
    promoted: bool = False  # version/commit deployed successfully to lower_environment
    freezes: Sequence[FreezeInfo] = ()
    windows: Sequence[WindowRule] = ()
    changes: Sequence[ChangeInfo] = ()  # the service's open changes for the environment, and the named one
    tests: Sequence[SuiteResult] = ()  # the latest result of each suite for the version/commit
    scans: Sequence[ScanResult] = ()  # the latest scan of each tool for the version/commit


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True)
class Decision:
    decision: str  # allow | deny
    reasons: tuple[Reason, ...] = ()
    change_id: str | None = None
    create_change: bool = False  # deny on a protected environment with no change: draft one
    lifted: tuple[str, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"


def _matches(change: ChangeInfo, request: GateRequest) -> bool:
    if change.service != request.service or change.environment != request.environment:
        return False
    # a change for another version does not cover this one; a change without a version covers any
    return not (change.version and request.version and change.version != request.version)


def _go_changes(request: GateRequest, changes: Sequence[ChangeInfo]) -> tuple[list[ChangeInfo], str | None]:
    """The approved changes that may carry this deployment, and why there is none."""
    if request.change_id is not None:
        named = next((c for c in changes if c.change_id == request.change_id), None)
        if named is None:
            return [], f"Change {request.change_id} is not known to the gate"
        if not _matches(named, request):
            return [], (
                f"Change {named.number or named.change_id} is for {named.service} in {named.environment}"
                f"{' at ' + named.version if named.version else ''}, not this deployment"
            )
        if named.state not in GO_STATES:
            return [], f"Change {named.number or named.change_id} is {named.state}, not approved"
        return [named], None
    go = [c for c in changes if c.state in GO_STATES and _matches(c, request)]
    if not go:
        return [], f"No approved change for {request.service} in {request.environment}"
    return go, None


def _subject(request: GateRequest) -> str:
    if request.version:
        return f"version {request.version}"
    if request.commit:
        return f"commit {request.commit[:12]}"
    return "this deployment"


def evaluate(request: GateRequest, snapshot: Snapshot, now: datetime) -> Decision:
    env = snapshot.environment
    protected = env is not None and env.protected
    denied: dict[str, str] = {}

    freezes = [f for f in snapshot.freezes if f.covers(request.service, request.environment, now)]
    if freezes:
        names = ", ".join(f"{f.name}{' (' + f.reason + ')' if f.reason else ''}" for f in freezes)
        denied["FREEZE_ACTIVE"] = f"{request.environment} is frozen for {request.service}: {names}"

    go: list[ChangeInfo] = []
    if protected:
        go, why_not = _go_changes(request, snapshot.changes)
        if why_not is not None:
            denied["NO_APPROVED_CHANGE"] = why_not
        if not any_open(snapshot.windows, now):
            denied["OUTSIDE_DEPLOYMENT_WINDOW"] = (
                f"{now.isoformat()} is outside every deployment window of {request.environment}"
            )
        if snapshot.lower_environment is not None and not snapshot.promoted:
            if request.version is None and request.commit is None:
                message = f"No version or commit given to check promotion from {snapshot.lower_environment}"
            else:
                message = f"{_subject(request)} has not been deployed successfully to {snapshot.lower_environment}"
            denied["PROMOTION_ORDER"] = message
        failed = [t for t in snapshot.tests if t.outcome in FAILED_TEST_OUTCOMES]
        if failed:
            suites = ", ".join(t.suite or "tests" for t in failed)
            denied["QUALITY_GATE_FAILED"] = f"Latest test suite failed for {_subject(request)}: {suites}"
        risky = [s for s in snapshot.scans if s.critical or s.high]
        if risky:
            critical, high = sum(s.critical for s in risky), sum(s.high for s in risky)
            denied["SECURITY_GATE_FAILED"] = (
                f"{critical} critical and {high} high security findings for {_subject(request)}"
            )
    else:
        # Unprotected environments need no change, but an approved emergency change still lifts a freeze.
        go = [c for c in snapshot.changes if c.state in GO_STATES and _matches(c, request)]

    emergency = next((c for c in go if c.type == "emergency"), None)
    lifted: tuple[str, ...] = ()
    if emergency is not None:
        lifted = tuple(code for code in DENY_ORDER if code in denied and code in LIFTABLE)
        for code in lifted:
            del denied[code]

    if denied:
        reasons = tuple(Reason(code, denied[code]) for code in DENY_ORDER if code in denied)
        change_id, create = _change_for_denial(request, snapshot, go, protected)
        return Decision("deny", reasons, change_id=change_id, create_change=create)

    reasons = ()
    chosen = go[0] if go else None
    if lifted and emergency is not None:
        chosen = emergency
        reasons = (
            Reason(
                "EMERGENCY_OVERRIDE",
                f"Emergency change {emergency.number or emergency.change_id} lifts: {', '.join(lifted)}",
            ),
        )
    elif go:
        chosen = next((c for c in go if c.type != "emergency"), go[0])
    return Decision("allow", reasons, change_id=chosen.change_id if chosen else None, lifted=lifted)


def _change_for_denial(
    request: GateRequest, snapshot: Snapshot, go: Sequence[ChangeInfo], protected: bool
) -> tuple[str | None, bool]:
    """The change a denial points to: the approved one, the named one, an open one, or a new draft."""
    if go:
        return go[0].change_id, False
    if request.change_id is not None:
        return request.change_id, False
    pending = next((c for c in snapshot.changes if c.state in OPEN_STATES and _matches(c, request)), None)
    if pending is not None:
        return pending.change_id, False
    return None, protected
