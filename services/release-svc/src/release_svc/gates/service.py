"""Gate use cases: load the snapshot from the local projections, decide, record the decision and publish it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.contracts.common import GateReason
from greenzone_common.contracts.release import GateEvaluated
from greenzone_common.outbox import Outbox
from release_svc.environments.policy import canonical_environment
from release_svc.gates import policy
from release_svc.gates.models import GateDecisionRecord
from release_svc.gates.schemas import GateDecisionRead, GateReasonRead
from release_svc.projections.models import ChangeView
from release_svc.projections.states import DRAFT_RANK
from release_svc.windows.policy import WindowRule

# One round trip: everything the rules need, as JSON. It runs as an asyncpg prepared statement on the session's own
# connection (inside its transaction): the gate is the hot path, and the statement is the same every time.
# $1 environment, $2 service, $3 version, $4 commit, $5 change_id (may be NULL, hence the casts), $6 now.
SNAPSHOT_SQL = """
WITH env AS (
    SELECT name, rank, protected, production FROM release.environments WHERE name = $1
), lower_env AS (
    SELECT e.name FROM release.environments e, env WHERE e.rank < env.rank ORDER BY e.rank DESC LIMIT 1
)
SELECT
  (SELECT row_to_json(env) FROM env) AS environment,
  (SELECT name FROM lower_env) AS lower_environment,
  EXISTS (
    SELECT 1 FROM release.deployments d, lower_env
    WHERE d.service = $2 AND d.environment = lower_env.name AND d.outcome = 'success'
      AND ((CAST($3 AS varchar) IS NOT NULL AND d.version = $3)
        OR (CAST($4 AS varchar) IS NOT NULL AND d.commit = $4))
  ) AS promoted,
  (SELECT coalesce(json_agg(f), '[]') FROM (
     SELECT id, name, start, "end", environments, services, reason FROM release.freezes
     WHERE lifted_at IS NULL AND start <= $6 AND "end" > $6) f) AS freezes,
  (SELECT coalesce(json_agg(w), '[]') FROM (
     SELECT days, start, "end", timezone FROM release.windows WHERE environment = $1) w) AS windows,
  (SELECT coalesce(json_agg(c), '[]') FROM (
     SELECT change_id, number, type, service, environment, state, version FROM release.changes
     WHERE (service = $2 AND environment = $1 AND state_rank <= 3)
        OR change_id = CAST($5 AS varchar)) c) AS changes,
  (SELECT coalesce(json_agg(t), '[]') FROM (
     SELECT DISTINCT ON (coalesce(suite, '')) suite, outcome FROM release.test_reports
     WHERE service = $2
       AND ((CAST($3 AS varchar) IS NOT NULL AND version = $3)
         OR (CAST($4 AS varchar) IS NOT NULL AND commit = $4))
     ORDER BY coalesce(suite, ''), reported_at DESC, id DESC) t) AS tests,
  (SELECT coalesce(json_agg(s), '[]') FROM (
     SELECT DISTINCT ON (coalesce(tool, '')) tool, critical, high FROM release.scan_reports
     WHERE service = $2
       AND ((CAST($3 AS varchar) IS NOT NULL AND version = $3)
         OR (CAST($4 AS varchar) IS NOT NULL AND commit = $4))
     ORDER BY coalesce(tool, ''), reported_at DESC, id DESC) s) AS scans
"""


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def load_snapshot(session: AsyncSession, request: policy.GateRequest, now: datetime) -> policy.Snapshot:
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    row = await driver.fetchrow(
        SNAPSHOT_SQL, request.environment, request.service, request.version, request.commit, request.change_id, now
    )
    assert row is not None
    env = _json(row["environment"])
    return policy.Snapshot(
        environment=policy.EnvironmentInfo(**env) if env else None,
        lower_environment=row["lower_environment"],
        promoted=bool(row["promoted"]),
        freezes=[
            policy.FreezeInfo(
                freeze_id=f["id"],
                name=f["name"],
                start=_ts(f["start"]),
                end=_ts(f["end"]),
                environments=tuple(f["environments"]),
                services=tuple(f["services"]),
                reason=f["reason"],
            )
            for f in _json(row["freezes"])
        ],
        windows=[
            WindowRule(
                days=tuple(w["days"]),
                start=time.fromisoformat(w["start"]),
                end=time.fromisoformat(w["end"]),
                timezone=w["timezone"],
            )
            for w in _json(row["windows"])
        ],
        changes=[policy.ChangeInfo(**c) for c in _json(row["changes"])],
        tests=[policy.SuiteResult(suite=t["suite"], outcome=t["outcome"]) for t in _json(row["tests"])],
        scans=[policy.ScanResult(tool=s["tool"], critical=s["critical"], high=s["high"]) for s in _json(row["scans"])],
    )


def normalise(
    service: str, environment: str, version: str | None, commit: str | None, change_id: str | None
) -> policy.GateRequest:
    return policy.GateRequest(
        service=service.strip(),
        environment=canonical_environment(environment),
        version=version or None,
        commit=commit or None,
        change_id=change_id or None,
    )


async def evaluate(
    session: AsyncSession,
    outbox: Outbox,
    request: policy.GateRequest,
    *,
    requested_by: str | None,
    now: datetime,
) -> GateDecisionRead:
    """Decide, and record the decision (row + event) in the caller's transaction."""
    snapshot = await load_snapshot(session, request, now)
    decision = policy.evaluate(request, snapshot, now)
    decision_id = str(uuid.uuid4())
    change_id = decision.change_id
    if decision.create_change:
        # change-svc drafts the change under this id when it sees the event; until then the projection holds a
        # draft so that the pipeline's retries point at the same change instead of drafting one each time.
        change_id = str(uuid.uuid4())
        await session.execute(
            pg_insert(ChangeView)
            .values(
                change_id=change_id,
                number=None,
                type="normal",
                service=request.service,
                environment=request.environment,
                state="draft",
                state_rank=DRAFT_RANK,
                title=f"Deploy {request.service} {request.version or request.commit or ''} to {request.environment}",
                version=request.version,
                auto_created=True,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
    reasons = [{"code": r.code, "message": r.message} for r in decision.reasons]
    await session.execute(
        insert(GateDecisionRecord).values(
            decision_id=decision_id,
            service=request.service,
            environment=request.environment,
            version=request.version,
            commit=request.commit,
            decision=decision.decision,
            reasons=reasons,
            change_id=change_id,
            change_auto_created=decision.create_change,
            requested_by=requested_by,
            evaluated_at=now,
        )
    )
    await outbox.add(
        session,
        GateEvaluated(
            decision_id=decision_id,
            service=request.service,
            environment=request.environment,
            version=request.version,
            commit=request.commit,
            decision=decision.decision,  # type: ignore[arg-type]
            reasons=[GateReason.model_validate(r) for r in reasons],
            change_id=change_id,
            change_auto_created=decision.create_change,
            protected=bool(snapshot.environment and snapshot.environment.protected),
            requested_by=requested_by,
            evaluated_at=now,
        ),
    )
    return GateDecisionRead(
        decision=decision.decision,  # type: ignore[arg-type]
        reasons=[GateReasonRead.model_validate(r) for r in reasons],
        decision_id=decision_id,
        change_id=change_id,
        evaluated_at=now,
        service=request.service,
        environment=request.environment,
        version=request.version,
        commit=request.commit,
        change_auto_created=decision.create_change,
    )


async def get_decision(session: AsyncSession, decision_id: str) -> GateDecisionRecord | None:
    return await session.get(GateDecisionRecord, decision_id)


def to_read(record: GateDecisionRecord) -> GateDecisionRead:
    return GateDecisionRead(
        decision=record.decision,  # type: ignore[arg-type]
        reasons=[GateReasonRead.model_validate(r) for r in record.reasons],
        decision_id=record.decision_id,
        change_id=record.change_id,
        evaluated_at=record.evaluated_at,
        service=record.service,
        environment=record.environment,
        version=record.version,
        commit=record.commit,
        change_auto_created=record.change_auto_created,
    )
