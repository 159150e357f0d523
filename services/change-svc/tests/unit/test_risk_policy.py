"""Risk and approval policy as PRODUCT.md states it: plain data in, plain data out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from change_svc.changes.policy import Risk, RiskFactor, RiskInput, assess_risk, level_for, required_approvals

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def change(
    type: str = "normal", environment: str = "staging", commits: int = 1, planned_start: datetime | None = START
) -> RiskInput:
    return RiskInput(type=type, environment=environment, commits=commits, planned_start=planned_start, planned_end=END)


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
    # evidence, findings and failure rate (not known at recording) are what can push a normal change to high
    risk = assess_risk(change(environment="production", commits=25, planned_start=None))

    assert risk.score == 5 + 20 + 15 + 5
    assert risk.level == "medium"
    assert required_approvals("normal", risk.level) == 2


def test_emergency_production_change_is_high_risk_yet_needs_one_approval() -> None:
    risk = assess_risk(change(type="emergency", environment="production", commits=25))

    assert risk.level == "high"
    assert required_approvals("emergency", risk.level) == 1
