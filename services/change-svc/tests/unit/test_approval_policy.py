"""Approval policy, segregation of duties and evidence-based auto-approval, as plain data in, plain data out."""

from __future__ import annotations

import pytest

from change_svc.changes.policy import (
    Findings,
    Risk,
    TestEvidence,
    Vote,
    approval_status,
    auto_approval,
)


def approve(by: str, cab: bool = False) -> Vote:
    return Vote(by, "approve", cab)


def reject(by: str, cab: bool = False) -> Vote:
    return Vote(by, "reject", cab)


@pytest.mark.parametrize(
    ("level", "votes", "state"),
    [
        ("low", [], "awaiting_approval"),
        ("low", [approve("bob")], "approved"),
        ("medium", [approve("bob")], "awaiting_approval"),
        ("medium", [approve("bob"), approve("carol")], "approved"),
        ("high", [approve("bob"), approve("carol")], "awaiting_approval"),
        ("high", [approve("bob"), approve("carol"), approve("dan")], "awaiting_approval"),  # no cab among them
        ("high", [approve("bob"), approve("carol"), approve("dan", cab=True)], "approved"),
        ("high", [approve("bob"), approve("carol"), approve("dan"), approve("erin", cab=True)], "approved"),
    ],
)
def test_normal_change_needs_approvers_by_risk_level(level: str, votes: list[Vote], state: str) -> None:
    assert approval_status("normal", level, "alice", votes).state == state


@pytest.mark.parametrize(
    ("votes", "state"),
    [
        ([approve("bob")], "awaiting_approval"),
        ([approve("bob", cab=True)], "approved"),
        ([approve("bob"), approve("carol", cab=True)], "approved"),
    ],
)
@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_emergency_change_needs_one_cab_approval(level: str, votes: list[Vote], state: str) -> None:
    assert approval_status("emergency", level, "alice", votes).state == state


@pytest.mark.parametrize(
    "votes",
    [
        [reject("bob")],
        [approve("bob"), reject("carol")],
        [reject("bob", cab=True), approve("carol"), approve("dan"), approve("erin", cab=True)],
    ],
)
def test_a_rejection_ends_it_whatever_else_was_given(votes: list[Vote]) -> None:
    assert approval_status("normal", "high", "alice", votes).state == "rejected"


def test_the_requesters_own_vote_never_counts() -> None:
    status = approval_status("normal", "low", "alice", [approve("alice", cab=True)])

    assert status.state == "awaiting_approval"
    assert status.approvals == 0


def test_an_approver_counts_once() -> None:
    status = approval_status("normal", "medium", "alice", [approve("bob"), approve("bob")])

    assert status.approvals == 1
    assert status.state == "awaiting_approval"
    assert status.missing == 1


def test_progress_says_whether_cab_is_still_missing() -> None:
    status = approval_status("normal", "high", "alice", [approve("bob"), approve("carol"), approve("dan")])

    assert (status.approvals, status.required, status.cab_required, status.cab_given) == (3, 3, True, False)


LOW = Risk(score=5, level="low")
PASSING = TestEvidence(suites=2, passed=120)


def test_normal_low_risk_change_with_passing_tests_and_no_findings_is_auto_approved() -> None:
    verdict = auto_approval("normal", LOW, PASSING, Findings(scans=1))

    assert verdict.approved
    assert verdict.reasons == [
        "type is normal",
        "risk is low (5)",
        "2 test suites passing (120 tests)",
        "0 critical and 0 high security findings",
    ]


@pytest.mark.parametrize(
    ("change_type", "risk", "tests", "findings", "why"),
    [
        ("emergency", LOW, PASSING, Findings(), "type is emergency (not normal)"),
        ("normal", Risk(score=35, level="medium"), PASSING, Findings(), "risk is medium (35)"),
        ("normal", LOW, TestEvidence(), Findings(), "no test evidence"),
        ("normal", LOW, TestEvidence(suites=2, failed_suites=1), Findings(), "1 test suites failing"),
        ("normal", LOW, PASSING, Findings(scans=1, critical=1), "1 critical and 0 high security findings"),
        ("normal", LOW, PASSING, Findings(scans=1, high=2), "0 critical and 2 high security findings"),
    ],
)
def test_auto_approval_is_refused_and_says_why(
    change_type: str, risk: Risk, tests: TestEvidence, findings: Findings, why: str
) -> None:
    verdict = auto_approval(change_type, risk, tests, findings)

    assert not verdict.approved
    assert why in verdict.reasons


def test_auto_approval_notes_when_no_scan_was_reported() -> None:
    verdict = auto_approval("normal", LOW, PASSING, Findings())

    assert verdict.approved
    assert "0 critical and 0 high security findings (no scan reported)" in verdict.reasons
