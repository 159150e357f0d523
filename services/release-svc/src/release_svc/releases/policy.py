"""Release lifecycle rules: pure functions of the release's state and what just happened.

planned → in_progress (first deployment attempt anywhere) → early_life_support (first successful production
deployment; ``deployed`` instead when early life support is configured to last zero time) → closed (early life
support over with no linked incident open, or closed by hand). A production rollback puts the release back to
in_progress. planned / in_progress may be cancelled.
"""

from __future__ import annotations

from datetime import datetime, timedelta

FINISHED = frozenset({"closed", "cancelled"})
LIVE_IN_PRODUCTION = frozenset({"deployed", "early_life_support", "closed"})
CANCELLABLE = frozenset({"planned", "in_progress"})
CLOSABLE = frozenset({"deployed", "early_life_support"})


def after_deployment(state: str, *, production: bool, success: bool, els_period: timedelta) -> str:
    if state in FINISHED:
        return state
    if production and success and state in ("planned", "in_progress"):
        return "early_life_support" if els_period > timedelta(0) else "deployed"
    if state == "planned":
        return "in_progress"
    return state


def starts_early_life_support(before: str, after: str) -> bool:
    return before != "early_life_support" and after == "early_life_support"


def after_rollback(state: str, *, production: bool) -> str:
    if production and state in ("deployed", "early_life_support"):
        return "in_progress"
    return state


def early_life_support_over(state: str, ends_at: datetime | None, now: datetime, open_incidents: int) -> bool:
    """Early life support ends by itself once its period is over and no linked incident is still open."""
    return state == "early_life_support" and ends_at is not None and now >= ends_at and open_incidents == 0


def unmet_dependencies(depends_on_states: dict[str, str | None]) -> list[str]:
    """Dependencies not yet live in production (a release cannot reach production before them)."""
    return sorted(rid for rid, state in depends_on_states.items() if state not in LIVE_IN_PRODUCTION)
