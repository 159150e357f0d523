"""The lifecycle, reviews due, conflicts, freezes, failure rate, ageing and success score as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from change_svc.changes.policy import (
    ALLOWED_FROM,
    STATES,
    Deployment,
    Freeze,
    IllegalTransition,
    Window,
    add_working_days,
    age_bucket,
    check_transition,
    conflicts,
    failure_rate,
    freezes_hit,
    review_due,
    success_score,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(("command", "state"), [(c, s) for c in ALLOWED_FROM for s in STATES if s in ALLOWED_FROM[c]])
def test_legal_transitions_pass(command: str, state: str) -> None:
    check_transition(command, state)


@pytest.mark.parametrize(
    ("command", "state"), [(c, s) for c in ALLOWED_FROM for s in STATES if s not in ALLOWED_FROM[c]]
)
def test_illegal_transitions_name_the_current_state(command: str, state: str) -> None:
    with pytest.raises(IllegalTransition) as raised:
        check_transition(command, state)

    assert raised.value.state == state
    assert f"is {state}" in str(raised.value)


@pytest.mark.parametrize("state", ["rejected", "cancelled", "closed"])
def test_terminal_states_allow_nothing(state: str) -> None:
    assert not [c for c, allowed in ALLOWED_FROM.items() if state in allowed]


def test_only_completed_changes_are_reviewed_and_implementing_ones_cannot_be_cancelled() -> None:
    assert ALLOWED_FROM["review"] == ("completed",)
    assert "implementing" not in ALLOWED_FROM["cancel"]


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (T0, T0 + timedelta(days=2)),  # Monday → Wednesday
        (T0 + timedelta(days=3), T0 + timedelta(days=7)),  # Thursday → Monday
        (T0 + timedelta(days=4), T0 + timedelta(days=8)),  # Friday → Tuesday
        (T0 + timedelta(days=5), T0 + timedelta(days=8)),  # Saturday → Tuesday
        (T0 + timedelta(days=6), T0 + timedelta(days=8)),  # Sunday → Tuesday
    ],
)
def test_two_working_days_skip_the_weekend(start: datetime, due: datetime) -> None:
    assert add_working_days(start, 2) == due


@pytest.mark.parametrize(
    ("change_type", "outcome", "needs_review"),
    [
        ("emergency", "successful", True),
        ("normal", "failed", True),
        ("normal", "rolled_back", True),
        ("standard", "failed", True),
        ("normal", "successful", False),
        ("standard", "successful", False),
    ],
)
def test_review_is_due_for_emergency_and_failed_changes(change_type: str, outcome: str, needs_review: bool) -> None:
    due = review_due(change_type, outcome, T0)

    assert (due is not None) == needs_review
    if due is not None:
        assert due == T0 + timedelta(days=2)


def w(id: str, start_h: int, end_h: int, service: str = "api", environment: str = "production") -> Window:
    return Window(id, service, environment, T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h))


def test_overlapping_windows_on_the_same_service_and_environment_conflict() -> None:
    found = conflicts(
        [
            w("a", 0, 2),
            w("b", 1, 3),
            w("c", 2, 4),  # touches a at its end: no conflict with a; overlaps b
            w("d", 0, 5, service="web"),
            w("e", 0, 5, environment="staging"),
        ]
    )

    assert found == {"a": ["b"], "b": ["a", "c"], "c": ["b"], "d": [], "e": []}


def test_freezes_hit_by_scope_and_time() -> None:
    year_end = Freeze("f1", "Year end", T0, T0 + timedelta(days=1), ("production",))
    api_only = Freeze("f2", "API", T0, T0 + timedelta(days=1), ("production",), ("api",))
    later = Freeze("f3", "Later", T0 + timedelta(days=2), T0 + timedelta(days=3), ("production",))
    freezes = [year_end, api_only, later]

    assert freezes_hit("api", "production", T0, T0 + timedelta(hours=1), freezes) == [year_end, api_only]
    assert freezes_hit("web", "production", T0, T0 + timedelta(hours=1), freezes) == [year_end]
    assert freezes_hit("api", "staging", T0, T0 + timedelta(hours=1), freezes) == []


def test_failure_rate_counts_failures_and_rolled_back_deployments() -> None:
    deployments = [
        Deployment(T0, "success"),
        Deployment(T0 + timedelta(hours=1), "failure"),
        Deployment(T0 + timedelta(hours=2), "success"),  # rolled back before the next success
        Deployment(T0 + timedelta(hours=4), "success"),
    ]
    rate = failure_rate(deployments, [T0 + timedelta(hours=3)])

    assert (rate.failed, rate.deployments) == (2, 4)
    assert rate.rate == 0.5


def test_failure_rate_without_deployments_is_unknown() -> None:
    assert failure_rate([], []).rate is None


@pytest.mark.parametrize(
    ("age", "bucket"),
    [
        (timedelta(hours=1), "<1d"),
        (timedelta(days=2), "1-3d"),
        (timedelta(days=5), "3-7d"),
        (timedelta(days=10), "7-30d"),
        (timedelta(days=90), ">30d"),
    ],
)
def test_backlog_age_buckets(age: timedelta, bucket: str) -> None:
    assert age_bucket(age) == bucket


def test_success_score_is_successful_over_completed() -> None:
    assert success_score(["successful", "failed", "successful", "rolled_back"]) == 0.5
    assert success_score([]) is None
