"""Release lifecycle rules and naming rules, table-style."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from release_svc.catalogue.policy import repository_short_name
from release_svc.environments.policy import canonical_environment
from release_svc.releases.policy import (
    after_deployment,
    after_rollback,
    early_life_support_over,
    starts_early_life_support,
    unmet_dependencies,
)

WEEK = timedelta(days=7)
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "production", "success", "els", "expected"),
    [
        ("planned", False, True, WEEK, "in_progress"),
        ("planned", False, False, WEEK, "in_progress"),  # a failed attempt still starts the work
        ("planned", True, True, WEEK, "early_life_support"),  # straight to production
        ("in_progress", True, True, WEEK, "early_life_support"),
        ("in_progress", True, False, WEEK, "in_progress"),  # a failed production deployment starts nothing
        ("in_progress", True, True, timedelta(0), "deployed"),  # no early life support configured
        ("early_life_support", True, True, WEEK, "early_life_support"),  # a second production deployment
        ("early_life_support", False, True, WEEK, "early_life_support"),
        ("closed", True, True, WEEK, "closed"),
        ("cancelled", False, True, WEEK, "cancelled"),
    ],
)
def test_state_after_deployment(state: str, production: bool, success: bool, els: timedelta, expected: str) -> None:
    assert after_deployment(state, production=production, success=success, els_period=els) == expected


@pytest.mark.parametrize(
    ("before", "after", "starts"),
    [
        ("in_progress", "early_life_support", True),
        ("planned", "early_life_support", True),
        ("early_life_support", "early_life_support", False),
        ("in_progress", "deployed", False),
    ],
)
def test_early_life_support_starts_once(before: str, after: str, starts: bool) -> None:
    assert starts_early_life_support(before, after) is starts


@pytest.mark.parametrize(
    ("state", "production", "expected"),
    [
        ("early_life_support", True, "in_progress"),
        ("deployed", True, "in_progress"),
        ("early_life_support", False, "early_life_support"),
        ("in_progress", True, "in_progress"),
    ],
)
def test_state_after_rollback(state: str, production: bool, expected: str) -> None:
    assert after_rollback(state, production=production) == expected


@pytest.mark.parametrize(
    ("state", "ends_at", "open_incidents", "over"),
    [
        ("early_life_support", NOW - timedelta(seconds=1), 0, True),
        ("early_life_support", NOW, 0, True),
        ("early_life_support", NOW + timedelta(seconds=1), 0, False),  # period not over
        ("early_life_support", NOW - timedelta(days=1), 1, False),  # a linked incident is still open
        ("deployed", NOW - timedelta(days=1), 0, False),  # not in early life support
        ("early_life_support", None, 0, False),
    ],
)
def test_early_life_support_ends_by_itself(
    state: str, ends_at: datetime | None, open_incidents: int, over: bool
) -> None:
    assert early_life_support_over(state, ends_at, NOW, open_incidents) is over


def test_dependencies_must_be_live_in_production() -> None:
    states: dict[str, str | None] = {
        "a": "early_life_support",
        "b": "in_progress",
        "c": "closed",
        "d": None,
        "e": "deployed",
        "f": "cancelled",
    }
    assert unmet_dependencies(states) == ["b", "d", "f"]


@pytest.mark.parametrize(
    ("repository", "name"),
    [
        ("octo-org/api", "api"),
        ("https://gitlab.com/group/sub/api.git", "api"),
        ("git@github.com:octo/web.git", "web"),
        ("api", "api"),
        ("octo-org/api/", "api"),
    ],
)
def test_repository_short_name(repository: str, name: str) -> None:
    assert repository_short_name(repository) == name


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("prod", "production"),
        ("PRD", "production"),
        (" Staging ", "staging"),
        ("production", "production"),
        ("qa", "qa"),
    ],
)
def test_canonical_environment(raw: str, name: str) -> None:
    assert canonical_environment(raw) == name
