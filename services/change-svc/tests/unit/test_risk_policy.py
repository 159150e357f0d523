"""Risk and approval policy as PRODUCT.md states it: plain data in, plain data out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from change_svc.changes.policy import (
    FailureRate,
    Findings,
    Risk,
    RiskFactor,
    RiskInput,
    TestEvidence,
    assess_risk,
    level_for,
    required_approvals,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
#: one passing suite: the baseline these tests start from (evidence factors are tested on their own below)
PASSING = TestEvidence(suites=1, failed_suites=0, passed=10)


def change(
    type: str = "normal",
    environment: str = "staging",
    commits: int = 1,
    planned_start: datetime | None = START,
    tests: TestEvidence = PASSING,
    findings: Findings = Findings(),
    failure_rate: FailureRate = FailureRate(),
    freezes: tuple[str, ...] = (),
    production: bool | None = None,
) -> RiskInput:
    return RiskInput(
        type=type,
        environment=environment,
        commits=commits,
        planned_start=planned_start,
        planned_end=END,
        production=production,
        tests=tests,
        findings=findings,
        failure_rate=failure_rate,
        freezes=freezes,
    )


def codes(risk: Risk) -> list[str]:
    return [f.code for f in risk.factors]


def factor(risk: Risk, code: str) -> RiskFactor:
    return next(f for f in risk.factors if f.code == code)


# --- factors ------------------------------------------------------------------------------------------------------


def test_small_planned_normal_change_outside_production_has_only_the_normal_change_factor() -> None:
    risk = assess_risk(change())

    assert risk == Risk(
        score=5, level="low", factors=[RiskFactor("NORMAL_CHANGE", 5, "normal changes are assessed case by case")]
    )


def test_emergency_change_scores_25() -> None:
    risk = assess_risk(change(type="emergency"))

    assert codes(risk) == ["EMERGENCY_CHANGE"]
    assert factor(risk, "EMERGENCY_CHANGE").points == 25


def test_standard_change_has_no_type_factor() -> None:
    risk = assess_risk(change(type="standard"))

    assert risk.factors == []
    assert risk.score == 0


@pytest.mark.parametrize("environment", ["production", "prod", "prd", "Production", "PROD"])
def test_production_environment_adds_20_points_naming_it(environment: str) -> None:
    risk = assess_risk(change(environment=environment))

    production = factor(risk, "PRODUCTION_ENVIRONMENT")
    assert production.points == 20
    assert environment in production.detail


@pytest.mark.parametrize("environment", ["staging", "dev", "production-like", "preprod"])
def test_other_environments_add_nothing(environment: str) -> None:
    assert "PRODUCTION_ENVIRONMENT" not in codes(assess_risk(change(environment=environment)))


@pytest.mark.parametrize(
    ("commits", "size_factor", "points"),
    [
        (0, None, 0),
        (5, None, 0),
        (6, "MEDIUM_CHANGE", 8),
        (20, "MEDIUM_CHANGE", 8),
        (21, "LARGE_CHANGE", 15),
        (500, "LARGE_CHANGE", 15),
    ],
)
def test_size_factor_follows_the_number_of_commits(commits: int, size_factor: str | None, points: int) -> None:
    risk = assess_risk(change(type="standard", commits=commits))

    size = [f for f in risk.factors if f.code in ("MEDIUM_CHANGE", "LARGE_CHANGE")]
    if size_factor is None:
        assert size == []
    else:
        assert [(f.code, f.points) for f in size] == [(size_factor, points)]
        assert str(commits) in size[0].detail
    assert risk.score == points


@pytest.mark.parametrize("type", ["normal", "emergency"])
def test_unplanned_change_adds_5_points(type: str) -> None:
    planned = assess_risk(change(type=type))
    unplanned = assess_risk(change(type=type, planned_start=None))

    assert factor(unplanned, "NO_PLANNED_WINDOW").points == 5
    assert unplanned.score == planned.score + 5


def test_unplanned_standard_change_needs_no_window() -> None:
    assert "NO_PLANNED_WINDOW" not in codes(assess_risk(change(type="standard", planned_start=None)))


def test_factors_add_up_to_the_score() -> None:
    risk = assess_risk(change(type="emergency", environment="production", commits=30, planned_start=None))

    assert codes(risk) == ["EMERGENCY_CHANGE", "PRODUCTION_ENVIRONMENT", "LARGE_CHANGE", "NO_PLANNED_WINDOW"]
    assert risk.score == 25 + 20 + 15 + 5 == sum(f.points for f in risk.factors)
    assert risk.level == "high"


def test_score_is_the_level_of_the_sum() -> None:
    risk = assess_risk(change(environment="production", commits=10))

    assert risk.score == 5 + 20 + 8
    assert risk.level == level_for(risk.score) == "medium"


# --- levels -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "level"),
    [(0, "low"), (29, "low"), (30, "medium"), (59, "medium"), (60, "high"), (100, "high")],
)
def test_level_thresholds(score: int, level: str) -> None:
    assert level_for(score) == level


# --- required approvals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "approvals"), [("low", 1), ("medium", 2), ("high", 3)])
def test_normal_change_needs_more_approvals_as_risk_rises(level: str, approvals: int) -> None:
    assert required_approvals("normal", level) == approvals


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_emergency_change_needs_one_approval_whatever_the_risk(level: str) -> None:
    assert required_approvals("emergency", level) == 1


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_standard_change_is_pre_approved(level: str) -> None:
    assert required_approvals("standard", level) == 0


def test_large_unplanned_production_change_is_medium_risk_and_needs_two_approvals() -> None:
    # with passing tests: evidence, findings, failure rate and freezes are what push a normal change to high
    risk = assess_risk(change(environment="production", commits=25, planned_start=None))

    assert risk.score == 5 + 20 + 15 + 5
    assert risk.level == "medium"
    assert required_approvals("normal", risk.level) == 2


def test_emergency_production_change_is_high_risk_yet_needs_one_approval() -> None:
    risk = assess_risk(change(type="emergency", environment="production", commits=25))

    assert risk.level == "high"
    assert required_approvals("emergency", risk.level) == 1


# --- evidence, findings, failure rate and freezes -------------------------------------------------------------------


def test_no_test_evidence_adds_15_points() -> None:
    risk = assess_risk(change(tests=TestEvidence()))

    assert factor(risk, "NO_TEST_EVIDENCE").points == 15
    assert risk.score == 5 + 15


def test_failing_tests_add_25_points_instead_of_missing_evidence() -> None:
    risk = assess_risk(change(tests=TestEvidence(suites=3, failed_suites=1, passed=40, failed=2)))

    failing = factor(risk, "FAILING_TESTS")
    assert failing.points == 25
    assert "1 of 3" in failing.detail and "2 failed" in failing.detail
    assert "NO_TEST_EVIDENCE" not in codes(risk)


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        (Findings(scans=1), []),
        (Findings(scans=1, critical=2), [("CRITICAL_FINDINGS", 30)]),
        (Findings(scans=1, high=1), [("HIGH_FINDINGS", 15)]),
        (Findings(scans=2, critical=1, high=4), [("CRITICAL_FINDINGS", 30), ("HIGH_FINDINGS", 15)]),
    ],
)
def test_security_findings_add_points_by_severity(findings: Findings, expected: list[tuple[str, int]]) -> None:
    risk = assess_risk(change(findings=findings))

    assert [(f.code, f.points) for f in risk.factors if f.code.endswith("_FINDINGS")] == expected


@pytest.mark.parametrize(
    ("deployments", "failed", "points"),
    [(0, 0, None), (20, 1, None), (20, 2, 10), (20, 3, 10), (20, 4, 20), (2, 2, 20)],
)
def test_change_failure_rate_of_the_last_90_days(deployments: int, failed: int, points: int | None) -> None:
    risk = assess_risk(change(failure_rate=FailureRate(deployments=deployments, failed=failed)))

    found = [f for f in risk.factors if f.code == "CHANGE_FAILURE_RATE"]
    assert [f.points for f in found] == ([] if points is None else [points])
    if found:
        assert f"{failed} of {deployments}" in found[0].detail


def test_planned_window_inside_a_freeze_adds_20_points_naming_the_freeze() -> None:
    risk = assess_risk(change(freezes=("Year end",)))

    assert factor(risk, "PLANNED_IN_FREEZE").points == 20
    assert "Year end" in factor(risk, "PLANNED_IN_FREEZE").detail


def test_the_environment_catalogue_decides_what_production_is() -> None:
    assert "PRODUCTION_ENVIRONMENT" in codes(assess_risk(change(environment="live", production=True)))
    assert "PRODUCTION_ENVIRONMENT" not in codes(assess_risk(change(environment="prod", production=False)))


def test_every_factor_at_once_is_capped_at_100_and_high() -> None:
    risk = assess_risk(
        change(
            type="emergency",
            environment="production",
            commits=50,
            planned_start=None,
            tests=TestEvidence(suites=1, failed_suites=1, failed=3),
            findings=Findings(scans=1, critical=1, high=1),
            failure_rate=FailureRate(deployments=4, failed=2),
            freezes=("Year end",),
        )
    )

    assert sum(f.points for f in risk.factors) > 100
    assert risk.score == 100
    assert risk.level == "high"


def test_evidence_can_push_a_normal_change_to_high_risk_and_three_approvals() -> None:
    risk = assess_risk(
        change(environment="production", tests=TestEvidence(suites=1, failed_suites=1), findings=Findings(high=1))
    )

    assert risk.score == 5 + 20 + 25 + 15
    assert required_approvals("normal", risk.level) == 3
