"""Risk and approval policy: pure functions of plain data (no I/O), read like PRODUCT.md.

Factors known when a change is recorded: its type, whether it targets production, its size (number of commits),
and whether it has a planned window. Evidence, findings, change failure rate and freezes come from projections
(the change enablement issue adds them as further factors of the same function).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

PRODUCTION_NAMES = {"production", "prod", "prd"}


@dataclass(frozen=True)
class RiskFactor:
    code: str
    points: int
    detail: str


@dataclass(frozen=True)
class RiskInput:
    type: str
    environment: str
    commits: int
    planned_start: datetime | None = None
    planned_end: datetime | None = None


@dataclass(frozen=True)
class Risk:
    score: int
    level: str
    factors: list[RiskFactor] = field(default_factory=list)


def level_for(score: int) -> str:
    if score >= 60:
        return "high"
    if score >= 30:
        return "medium"
    return "low"


def assess_risk(change: RiskInput) -> Risk:
    factors: list[RiskFactor] = []
    if change.type == "emergency":
        factors.append(RiskFactor("EMERGENCY_CHANGE", 25, "emergency changes skip the usual lead time"))
    elif change.type == "normal":
        factors.append(RiskFactor("NORMAL_CHANGE", 5, "normal changes are assessed case by case"))
    if change.environment.lower() in PRODUCTION_NAMES:
        factors.append(RiskFactor("PRODUCTION_ENVIRONMENT", 20, f"targets {change.environment}"))
    if change.commits > 20:
        factors.append(RiskFactor("LARGE_CHANGE", 15, f"{change.commits} commits (more than 20)"))
    elif change.commits > 5:
        factors.append(RiskFactor("MEDIUM_CHANGE", 8, f"{change.commits} commits (more than 5)"))
    if change.type != "standard" and change.planned_start is None:
        factors.append(RiskFactor("NO_PLANNED_WINDOW", 5, "no planned start given"))
    score = min(100, sum(f.points for f in factors))
    return Risk(score=score, level=level_for(score), factors=factors)


def required_approvals(change_type: str, level: str) -> int:
    """low 1, medium 2, high 3 (one of them cab); emergency 1 cab; standard 0 (pre-approved template)."""
    if change_type == "standard":
        return 0
    if change_type == "emergency":
        return 1
    return {"low": 1, "medium": 2, "high": 3}[level]
