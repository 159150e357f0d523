"""Change states in the order a change moves through them, so that an event arriving late never moves the
projection backwards (``rejected``/``cancelled``/``completed`` are terminal, ``closed`` is last)."""

from __future__ import annotations

DRAFT_RANK = 0
STATE_RANK = {
    "draft": DRAFT_RANK,
    "awaiting_approval": 1,
    "approved": 2,
    "implementing": 3,
    "rejected": 4,
    "completed": 4,
    "cancelled": 4,
    "closed": 5,
}
