"""Reads of the projections that turn other services' facts into the plain inputs of ``changes.policy``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from change_svc.changes import policy
from change_svc.projections.models import FreezeView

FAILURE_RATE_WINDOW = timedelta(days=90)


def to_freeze(row: FreezeView) -> policy.Freeze | None:
    if row.start is None or row.end is None:
        return None
    return policy.Freeze(
        id=row.freeze_id,
        name=row.name,
        start=row.start,
        end=row.end,
        environments=tuple(row.environments),
        services=tuple(row.services),
    )


async def freezes_between(session: AsyncSession, start: datetime, end: datetime) -> list[policy.Freeze]:
    """Freezes in force (scheduled, not lifted) that overlap [start, end)."""
    rows = (
        await session.execute(
            select(FreezeView).where(FreezeView.lifted_at.is_(None), FreezeView.start < end, FreezeView.end > start)
        )
    ).scalars()
    return [f for f in (to_freeze(r) for r in rows) if f is not None]


@dataclass(frozen=True)
class RiskFacts:
    """Everything the projections know that the risk of one change depends on."""

    production: bool | None
    tests: policy.TestEvidence
    findings: policy.Findings
    failure_rate: policy.FailureRate
    freezes: list[policy.Freeze]
    #: the next change number, when asked for (``number=True``: a change is being recorded)
    number: int | None = None


# One round trip for every projection the risk reads (this is on the hot path of POST /changes).
_RISK_FACTS_SQL = """
    WITH production AS (
        SELECT name FROM change.environments WHERE production
        UNION SELECT unnest(CAST(:production_names AS text[]))
    )
    SELECT
      (SELECT production FROM change.environments WHERE name = :environment) AS production,
      (SELECT coalesce(json_agg(json_build_array(t.outcome, t.passed, t.failed)), '[]')
         FROM (SELECT DISTINCT ON (suite) suite, outcome, passed, failed FROM change.test_results
               WHERE service = :service AND (version = :version OR commit = ANY(CAST(:commits AS text[])))
               ORDER BY suite, reported_at DESC) t) AS tests,
      (SELECT coalesce(json_agg(json_build_array(s.critical, s.high)), '[]')
         FROM (SELECT DISTINCT ON (tool) tool, critical, high FROM change.scan_results
               WHERE service = :service AND (version = :version OR commit = ANY(CAST(:commits AS text[])))
               ORDER BY tool, reported_at DESC) s) AS scans,
      (SELECT coalesce(json_agg(json_build_array(d.at, d.outcome)), '[]') FROM change.deployments d
         WHERE d.service = :service AND d.at >= :since AND d.at <= :now
           AND d.environment IN (SELECT name FROM production)) AS deployments,
      (SELECT coalesce(json_agg(r.at), '[]') FROM change.rollbacks r
         WHERE r.service = :service AND r.at >= :since AND r.environment IN (SELECT name FROM production))
         AS rollbacks,
      (SELECT coalesce(json_agg(json_build_array(f.freeze_id, f.name, f.start, f."end", f.environments, f.services)),
                       '[]')
         FROM change.freezes f
         WHERE f.lifted_at IS NULL AND f.start < :window_end AND f."end" > :window_start) AS freezes
    """
_RISK_FACTS = text(_RISK_FACTS_SQL)
# ... and, when a change is being recorded, its number from the sequence in the same round trip
_RISK_FACTS_AND_NUMBER = text(_RISK_FACTS_SQL + ", nextval('change.change_number_seq') AS number")


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def risk_facts(
    session: AsyncSession,
    *,
    service: str,
    environment: str,
    version: str | None,
    commits: Sequence[str],
    planned_start: datetime | None,
    planned_end: datetime | None,
    now: datetime,
    number: bool = False,
) -> RiskFacts:
    window_start = planned_start or now
    window_end = planned_end or window_start + timedelta(hours=1)
    row = (
        await session.execute(
            _RISK_FACTS_AND_NUMBER if number else _RISK_FACTS,
            {
                "production_names": sorted(policy.PRODUCTION_NAMES),
                "environment": environment,
                "service": service,
                "version": version or None,  # NULL matches nothing ("" is stored when none was reported)
                "commits": list(commits),
                "since": now - FAILURE_RATE_WINDOW,
                "now": now,
                "window_start": window_start,
                "window_end": window_end,
            },
        )
    ).one()
    tests = [tuple(t) for t in row.tests]
    scans = [tuple(s) for s in row.scans]
    freezes = [
        policy.Freeze(
            id=f[0], name=f[1], start=_ts(f[2]), end=_ts(f[3]), environments=tuple(f[4]), services=tuple(f[5])
        )
        for f in row.freezes
    ]
    return RiskFacts(
        production=row.production,
        tests=policy.TestEvidence(
            suites=len(tests),
            failed_suites=sum(1 for o, _, f in tests if o != "success" or f > 0),
            passed=sum(p for _, p, _ in tests),
            failed=sum(f for _, _, f in tests),
        ),
        findings=policy.Findings(scans=len(scans), critical=sum(c for c, _ in scans), high=sum(h for _, h in scans)),
        failure_rate=policy.failure_rate(
            [policy.Deployment(_ts(at), outcome) for at, outcome in row.deployments], [_ts(r) for r in row.rollbacks]
        ),
        freezes=(
            policy.freezes_hit(service, environment, window_start, window_end, freezes)
            if planned_start is not None
            else []
        ),
        number=row.number if number else None,
    )
