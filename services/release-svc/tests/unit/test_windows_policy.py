"""Deployment windows in their own time zone, correct across both daylight saving transitions."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from release_svc.windows.policy import WindowRule, any_open, is_open, occurrences

LONDON = WindowRule(
    days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"), start=time(9), end=time(16), timezone="Europe/London"
)
WEEKDAYS_NY = WindowRule(
    days=("mon", "tue", "wed", "thu", "fri"), start=time(9), end=time(17), timezone="America/New_York"
)
OVERNIGHT = WindowRule(days=("fri",), start=time(22), end=time(2), timezone="Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "at", "open_"),
    [
        # Europe/London: GMT (UTC+0) until 2026-03-29 01:00 UTC, then BST (UTC+1) until 2026-10-25 01:00 UTC
        (LONDON, utc(2026, 3, 28, 9, 0), True),  # Sat before spring-forward: 09:00 GMT
        (LONDON, utc(2026, 3, 28, 8, 30), False),
        (LONDON, utc(2026, 3, 29, 8, 0), True),  # spring-forward day: 09:00 BST is 08:00 UTC
        (LONDON, utc(2026, 3, 29, 7, 59), False),
        (LONDON, utc(2026, 3, 29, 14, 59), True),  # 15:59 BST
        (LONDON, utc(2026, 3, 29, 15, 0), False),  # 16:00 BST: closed, although 15:00 UTC
        (LONDON, utc(2026, 10, 24, 8, 0), True),  # last BST day
        (LONDON, utc(2026, 10, 25, 8, 0), False),  # fall-back day: 08:00 UTC is 08:00 GMT
        (LONDON, utc(2026, 10, 25, 9, 0), True),  # 09:00 GMT
        (LONDON, utc(2026, 10, 25, 15, 59), True),  # 15:59 GMT
        (LONDON, utc(2026, 10, 25, 16, 0), False),
        # America/New_York: EDT from 2026-03-08, EST from 2026-11-01; the local weekday decides, not UTC's
        (WEEKDAYS_NY, utc(2026, 3, 9, 13, 0), True),  # Mon 09:00 EDT
        (WEEKDAYS_NY, utc(2026, 3, 6, 13, 30), False),  # Fri 08:30 EST
        (WEEKDAYS_NY, utc(2026, 3, 7, 1, 0), False),  # Sat 01:00 UTC is Fri 20:00 EST: outside the hours
        (WEEKDAYS_NY, utc(2026, 11, 2, 14, 0), True),  # Mon 09:00 EST
        (WEEKDAYS_NY, utc(2026, 11, 2, 13, 30), False),  # Mon 08:30 EST
        # a window across midnight belongs to the day it opens
        (OVERNIGHT, utc(2026, 3, 27, 21, 30), True),  # Fri 22:30 CET
        (OVERNIGHT, utc(2026, 3, 28, 0, 30), True),  # Sat 01:30 CET
        (OVERNIGHT, utc(2026, 3, 28, 1, 0), False),  # Sat 02:00 CET
        (OVERNIGHT, utc(2026, 3, 28, 21, 30), False),  # Sat 22:30: Saturday is not a listed day
    ],
)
def test_window_opens_in_local_time(window: WindowRule, at: datetime, open_: bool) -> None:
    assert is_open(window, at) is open_


def test_no_window_means_always_open() -> None:
    assert any_open([], utc(2026, 1, 1, 3, 0))
    assert not any_open([WEEKDAYS_NY], utc(2026, 1, 3, 15, 0))  # a Saturday


def test_occurrences_follow_the_spring_transition() -> None:
    week = occurrences(LONDON, utc(2026, 3, 28), utc(2026, 3, 30))
    assert week == [
        (utc(2026, 3, 28, 9), utc(2026, 3, 28, 16)),  # GMT
        (utc(2026, 3, 29, 8), utc(2026, 3, 29, 15)),  # BST
    ]


def test_occurrences_follow_the_autumn_transition() -> None:
    week = occurrences(LONDON, utc(2026, 10, 24), utc(2026, 10, 26))
    assert week == [
        (utc(2026, 10, 24, 8), utc(2026, 10, 24, 15)),  # BST
        (utc(2026, 10, 25, 9), utc(2026, 10, 25, 16)),  # GMT
    ]


def test_a_window_starting_in_the_spring_gap_opens_just_after_it() -> None:
    # 01:30 does not exist in London on 2026-03-29: the window opens when clocks jump to 02:00 BST (01:00 UTC)
    early = WindowRule(days=("sun",), start=time(1, 30), end=time(3), timezone="Europe/London")
    [(opens, closes)] = occurrences(early, utc(2026, 3, 29), utc(2026, 3, 30))
    assert (opens, closes) == (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0))
    assert is_open(early, utc(2026, 3, 29, 1, 0)) and not is_open(early, utc(2026, 3, 29, 0, 59))
