"""The gate's rules, one row per rule, reason code and combination that matters (API.md, release-svc)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from release_svc.gates.policy import (
    ChangeInfo,
    Decision,
    EnvironmentInfo,
    FreezeInfo,
    GateRequest,
    ScanResult,
    Snapshot,
    SuiteResult,
    evaluate,
)
from release_svc.windows.policy import WindowRule

NOW = datetime(2026, 3, 4, 11, 0, tzinfo=UTC)  # a Wednesday, 11:00 in London (GMT)
PROD = EnvironmentInfo("production", 40, protected=True, production=True)
STAGING = EnvironmentInfo("staging", 30, protected=False, production=False)
REQUEST = GateRequest(service="api", environment="production", version="1.4.2", commit="a" * 40)
STAGING_REQUEST = replace(REQUEST, environment="staging")


def change(state: str = "approved", type: str = "normal", **kw: str) -> ChangeInfo:
    values = {
        "change_id": f"{type}-{state}",
        "number": "CHG-000001",
        "service": "api",
        "environment": "production",
        "version": "1.4.2",
    }
    values.update(kw)
    return ChangeInfo(type=type, state=state, **values)  # type: ignore[arg-type]


def freeze(**kw: object) -> FreezeInfo:
    values: dict[str, object] = {
        "freeze_id": "f1",
        "name": "Year end",
        "start": NOW - timedelta(hours=1),
        "end": NOW + timedelta(days=1),
        "environments": ("production", "staging"),
        "services": (),
        "reason": "peak",
    }
    values.update(kw)
    return FreezeInfo(**values)  # type: ignore[arg-type]


OPEN_WINDOW = WindowRule(("mon", "tue", "wed", "thu"), time(9), time(16), "Europe/London")
CLOSED_WINDOW = WindowRule(("sat", "sun"), time(9), time(16), "Europe/London")
APPROVED = change()
EMERGENCY = change(type="emergency")
GREEN = Snapshot(
    environment=PROD,
    lower_environment="staging",
    promoted=True,
    changes=(APPROVED,),
    tests=(SuiteResult("unit", "success"),),
    scans=(ScanResult("trivy", 0, 0),),
)


def snap(**kw: object) -> Snapshot:
    return replace(GREEN, **kw)  # type: ignore[arg-type]


# (id, request, snapshot, decision, reason codes, change_id, create_change)
ROWS = [
    ("protected-all-green", REQUEST, GREEN, "allow", [], "normal-approved", False),
    (
        "implementing-change-counts",
        REQUEST,
        snap(changes=(change("implementing"),)),
        "allow",
        [],
        "normal-implementing",
        False,
    ),
    (
        "standard-change-counts",
        REQUEST,
        snap(changes=(change(type="standard"),)),
        "allow",
        [],
        "standard-approved",
        False,
    ),
    (
        "change-without-version-covers-any",
        REQUEST,
        snap(changes=(change(version=""),)),
        "allow",
        [],
        "normal-approved",
        False,
    ),
    ("no-change-drafts-one", REQUEST, snap(changes=()), "deny", ["NO_APPROVED_CHANGE"], None, True),
    (
        "pending-change-is-pointed-at",
        REQUEST,
        snap(changes=(change("awaiting_approval"),)),
        "deny",
        ["NO_APPROVED_CHANGE"],
        "normal-awaiting_approval",
        False,
    ),
    (
        "auto-created-draft-is-reused",
        REQUEST,
        snap(changes=(change("draft"),)),
        "deny",
        ["NO_APPROVED_CHANGE"],
        "normal-draft",
        False,
    ),
    (
        "change-for-another-version",
        REQUEST,
        snap(changes=(change(version="1.4.1"),)),
        "deny",
        ["NO_APPROVED_CHANGE"],
        None,
        True,
    ),
    (
        "change-for-another-environment",
        REQUEST,
        snap(changes=(change(environment="staging"),)),
        "deny",
        ["NO_APPROVED_CHANGE"],
        None,
        True,
    ),
    (
        "rejected-change-is-no-change",
        REQUEST,
        snap(changes=(change("rejected"),)),
        "deny",
        ["NO_APPROVED_CHANGE"],
        None,
        True,
    ),
    (
        "named-change-approved",
        replace(REQUEST, change_id="normal-approved"),
        GREEN,
        "allow",
        [],
        "normal-approved",
        False,
    ),
    (
        "named-change-not-approved",
        replace(REQUEST, change_id="normal-awaiting_approval"),
        snap(changes=(change("awaiting_approval"), APPROVED)),
        "deny",
        ["NO_APPROVED_CHANGE"],
        "normal-awaiting_approval",
        False,
    ),
    ("named-change-unknown", replace(REQUEST, change_id="nope"), GREEN, "deny", ["NO_APPROVED_CHANGE"], "nope", False),
    (
        "named-change-of-another-service",
        replace(REQUEST, change_id="x"),
        snap(changes=(change(change_id="x", service="web"),)),
        "deny",
        ["NO_APPROVED_CHANGE"],
        "x",
        False,
    ),
    (
        "freeze-denies-protected",
        REQUEST,
        snap(freezes=(freeze(),)),
        "deny",
        ["FREEZE_ACTIVE"],
        "normal-approved",
        False,
    ),
    (
        "freeze-denies-unprotected",
        STAGING_REQUEST,
        Snapshot(environment=STAGING, freezes=(freeze(),)),
        "deny",
        ["FREEZE_ACTIVE"],
        None,
        False,
    ),
    (
        "freeze-of-other-service",
        REQUEST,
        snap(freezes=(freeze(services=("web",)),)),
        "allow",
        [],
        "normal-approved",
        False,
    ),
    (
        "freeze-of-this-service",
        REQUEST,
        snap(freezes=(freeze(services=("api",)),)),
        "deny",
        ["FREEZE_ACTIVE"],
        "normal-approved",
        False,
    ),
    (
        "freeze-of-other-environment",
        REQUEST,
        snap(freezes=(freeze(environments=("staging",)),)),
        "allow",
        [],
        "normal-approved",
        False,
    ),
    ("freeze-over", REQUEST, snap(freezes=(freeze(end=NOW),)), "allow", [], "normal-approved", False),
    (
        "freeze-not-begun",
        REQUEST,
        snap(freezes=(freeze(start=NOW + timedelta(minutes=1)),)),
        "allow",
        [],
        "normal-approved",
        False,
    ),
    ("inside-window", REQUEST, snap(windows=(OPEN_WINDOW,)), "allow", [], "normal-approved", False),
    (
        "outside-window",
        REQUEST,
        snap(windows=(CLOSED_WINDOW,)),
        "deny",
        ["OUTSIDE_DEPLOYMENT_WINDOW"],
        "normal-approved",
        False,
    ),
    (
        "any-window-open-suffices",
        REQUEST,
        snap(windows=(CLOSED_WINDOW, OPEN_WINDOW)),
        "allow",
        [],
        "normal-approved",
        False,
    ),
    (
        "unprotected-ignores-windows",
        STAGING_REQUEST,
        Snapshot(environment=STAGING, windows=(CLOSED_WINDOW,)),
        "allow",
        [],
        None,
        False,
    ),
    ("not-promoted", REQUEST, snap(promoted=False), "deny", ["PROMOTION_ORDER"], "normal-approved", False),
    (
        "lowest-environment-needs-no-promotion",
        REQUEST,
        snap(promoted=False, lower_environment=None),
        "allow",
        [],
        "normal-approved",
        False,
    ),
    (
        "unprotected-ignores-promotion",
        STAGING_REQUEST,
        Snapshot(environment=STAGING, lower_environment="test"),
        "allow",
        [],
        None,
        False,
    ),
    (
        "latest-suite-failed",
        REQUEST,
        snap(tests=(SuiteResult("unit", "failure"),)),
        "deny",
        ["QUALITY_GATE_FAILED"],
        "normal-approved",
        False,
    ),
    (
        "latest-suite-errored",
        REQUEST,
        snap(tests=(SuiteResult("unit", "success"), SuiteResult("e2e", "error"))),
        "deny",
        ["QUALITY_GATE_FAILED"],
        "normal-approved",
        False,
    ),
    (
        "cancelled-suite-is-not-a-failure",
        REQUEST,
        snap(tests=(SuiteResult("e2e", "cancel"),)),
        "allow",
        [],
        "normal-approved",
        False,
    ),
    ("no-test-evidence-is-not-a-failure", REQUEST, snap(tests=()), "allow", [], "normal-approved", False),
    (
        "high-finding",
        REQUEST,
        snap(scans=(ScanResult("trivy", 0, 1),)),
        "deny",
        ["SECURITY_GATE_FAILED"],
        "normal-approved",
        False,
    ),
    (
        "critical-finding",
        REQUEST,
        snap(scans=(ScanResult("codeql", 2, 0),)),
        "deny",
        ["SECURITY_GATE_FAILED"],
        "normal-approved",
        False,
    ),
    (
        "unprotected-ignores-quality-and-security",
        STAGING_REQUEST,
        Snapshot(environment=STAGING, tests=(SuiteResult("unit", "failure"),), scans=(ScanResult("trivy", 3, 3),)),
        "allow",
        [],
        None,
        False,
    ),
    (
        "unknown-environment-is-unprotected",
        replace(REQUEST, environment="sandbox"),
        Snapshot(environment=None),
        "allow",
        [],
        None,
        False,
    ),
    # emergency changes: lift freeze, window and promotion; never quality or security
    (
        "emergency-lifts-freeze",
        REQUEST,
        snap(changes=(EMERGENCY,), freezes=(freeze(),)),
        "allow",
        ["EMERGENCY_OVERRIDE"],
        "emergency-approved",
        False,
    ),
    (
        "emergency-lifts-window",
        REQUEST,
        snap(changes=(EMERGENCY,), windows=(CLOSED_WINDOW,)),
        "allow",
        ["EMERGENCY_OVERRIDE"],
        "emergency-approved",
        False,
    ),
    (
        "emergency-lifts-promotion",
        REQUEST,
        snap(changes=(EMERGENCY,), promoted=False),
        "allow",
        ["EMERGENCY_OVERRIDE"],
        "emergency-approved",
        False,
    ),
    (
        "emergency-lifts-all-three",
        REQUEST,
        snap(changes=(EMERGENCY,), freezes=(freeze(),), windows=(CLOSED_WINDOW,), promoted=False),
        "allow",
        ["EMERGENCY_OVERRIDE"],
        "emergency-approved",
        False,
    ),
    (
        "emergency-never-lifts-quality",
        REQUEST,
        snap(changes=(EMERGENCY,), freezes=(freeze(),), tests=(SuiteResult("unit", "failure"),)),
        "deny",
        ["QUALITY_GATE_FAILED"],
        "emergency-approved",
        False,
    ),
    (
        "emergency-never-lifts-security",
        REQUEST,
        snap(changes=(EMERGENCY,), windows=(CLOSED_WINDOW,), scans=(ScanResult("trivy", 1, 0),)),
        "deny",
        ["SECURITY_GATE_FAILED"],
        "emergency-approved",
        False,
    ),
    (
        "emergency-with-nothing-to-lift-is-a-plain-allow",
        REQUEST,
        snap(changes=(EMERGENCY,)),
        "allow",
        [],
        "emergency-approved",
        False,
    ),
    (
        "emergency-lifts-freeze-of-unprotected",
        STAGING_REQUEST,
        Snapshot(environment=STAGING, freezes=(freeze(),), changes=(change(type="emergency", environment="staging"),)),
        "allow",
        ["EMERGENCY_OVERRIDE"],
        "emergency-approved",
        False,
    ),
    (
        "unapproved-emergency-lifts-nothing",
        REQUEST,
        snap(changes=(change("awaiting_approval", "emergency"),), freezes=(freeze(),)),
        "deny",
        ["NO_APPROVED_CHANGE", "FREEZE_ACTIVE"],
        "emergency-awaiting_approval",
        False,
    ),
    (
        "normal-preferred-when-nothing-to-lift",
        REQUEST,
        snap(changes=(EMERGENCY, APPROVED)),
        "allow",
        [],
        "normal-approved",
        False,
    ),
    (
        "emergency-chosen-when-it-lifts",
        REQUEST,
        snap(changes=(APPROVED, EMERGENCY), freezes=(freeze(),)),
        "allow",
        ["EMERGENCY_OVERRIDE"],
        "emergency-approved",
        False,
    ),
    # several rules at once: every reason, in a stable order
    (
        "everything-wrong",
        REQUEST,
        snap(
            changes=(),
            freezes=(freeze(),),
            windows=(CLOSED_WINDOW,),
            promoted=False,
            tests=(SuiteResult("unit", "failure"),),
            scans=(ScanResult("trivy", 0, 2),),
        ),
        "deny",
        [
            "NO_APPROVED_CHANGE",
            "FREEZE_ACTIVE",
            "OUTSIDE_DEPLOYMENT_WINDOW",
            "PROMOTION_ORDER",
            "QUALITY_GATE_FAILED",
            "SECURITY_GATE_FAILED",
        ],
        None,
        True,
    ),
]


@pytest.mark.parametrize(
    ("request_", "snapshot", "decision", "codes", "change_id", "create"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_gate(
    request_: GateRequest, snapshot: Snapshot, decision: str, codes: list[str], change_id: str | None, create: bool
) -> None:
    result = evaluate(request_, snapshot, NOW)
    assert (result.decision, [r.code for r in result.reasons], result.change_id, result.create_change) == (
        decision,
        codes,
        change_id,
        create,
    )
    assert all(r.message for r in result.reasons)


def test_override_message_names_what_was_lifted() -> None:
    result: Decision = evaluate(REQUEST, snap(changes=(EMERGENCY,), freezes=(freeze(),), promoted=False), NOW)
    [reason] = result.reasons
    assert "FREEZE_ACTIVE" in reason.message and "PROMOTION_ORDER" in reason.message
    assert result.lifted == ("FREEZE_ACTIVE", "PROMOTION_ORDER")


def test_freeze_message_names_the_freeze_and_its_reason() -> None:
    [reason] = evaluate(REQUEST, snap(freezes=(freeze(),)), NOW).reasons
    assert "Year end" in reason.message and "peak" in reason.message
