"""Gate use cases: load the snapshot from the local projections, decide, record the decision and publish it."""

from __future__ import annotations

import json
import uuid
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any, NamedTuple

from pydantic_core import to_json, to_jsonable_python
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from greenzone_common import audit as audit_trail
from greenzone_common.audit import Actor
from greenzone_common.batching import Coalescer
from greenzone_common.bulk import picked, unnest_rows
from greenzone_common.contracts.release import GateEvaluated
from greenzone_common.db import pooled_driver, session_driver
from greenzone_common.outbox import COLUMNS as OUTBOX_COLUMNS
from greenzone_common.outbox import Outbox
from release_svc.audit import service as audit
from release_svc.environments.policy import canonical_environment
from release_svc.gates import policy
from release_svc.gates.models import GateDecisionRecord
from release_svc.gates.schemas import GateDecisionRead, GateReasonRead
from release_svc.projections.models import ChangeView
from release_svc.projections.states import DRAFT_RANK
from release_svc.windows.policy import WindowRule

# One round trip: everything the rules need, as one JSON document. It runs as an asyncpg prepared statement on the
# connection that records the decision (in the caller's transaction when there is one): the gate is the hot path,
# and the statement is the same every time.
# $1 environment, $2 service, $3 version, $4 commit, $5 change_id (may be NULL, hence the casts), $6 now.
SNAPSHOT_SQL = """
WITH env AS (
    SELECT name, rank, protected, production FROM release.environments WHERE name = $1
), lower_env AS (
    SELECT e.name FROM release.environments e, env WHERE e.rank < env.rank ORDER BY e.rank DESC LIMIT 1
)
SELECT json_build_object(
  'environment', (SELECT row_to_json(env) FROM env),
  'lower_environment', (SELECT name FROM lower_env),
  'promoted', EXISTS (
    SELECT 1 FROM release.deployments d, lower_env
    WHERE d.service = $2 AND d.environment = lower_env.name AND d.outcome = 'success'
      AND ((CAST($3 AS varchar) IS NOT NULL AND d.version = $3)
        OR (CAST($4 AS varchar) IS NOT NULL AND d.commit = $4))
  ),
  'freezes', (SELECT coalesce(json_agg(f), '[]') FROM (
     SELECT id, name, start, "end", environments, services, reason FROM release.freezes
     WHERE lifted_at IS NULL AND start <= $6 AND "end" > $6) f),
  'windows', (SELECT coalesce(json_agg(w), '[]') FROM (
     SELECT days, start, "end", timezone FROM release.windows WHERE environment = $1) w),
  'changes', (SELECT coalesce(json_agg(c), '[]') FROM (
     SELECT change_id, number, type, service, environment, state, version FROM release.changes
     WHERE (service = $2 AND environment = $1 AND state_rank <= 3)
        OR change_id = CAST($5 AS varchar)) c),
  'tests', (SELECT coalesce(json_agg(t), '[]') FROM (
     SELECT DISTINCT ON (coalesce(suite, '')) suite, outcome FROM release.test_reports
     WHERE service = $2
       AND ((CAST($3 AS varchar) IS NOT NULL AND version = $3)
         OR (CAST($4 AS varchar) IS NOT NULL AND commit = $4))
     ORDER BY coalesce(suite, ''), reported_at DESC, id DESC) t),
  'scans', (SELECT coalesce(json_agg(s), '[]') FROM (
     SELECT DISTINCT ON (coalesce(tool, '')) tool, critical, high FROM release.scan_reports
     WHERE service = $2
       AND ((CAST($3 AS varchar) IS NOT NULL AND version = $3)
         OR (CAST($4 AS varchar) IS NOT NULL AND commit = $4))
     ORDER BY coalesce(tool, ''), reported_at DESC, id DESC) s)
) AS snapshot
"""


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def load_snapshot(driver: Any, request: policy.GateRequest, now: datetime) -> policy.Snapshot:
    """The projections' snapshot, read on ``driver`` (an asyncpg connection)."""
    value = await driver.fetchval(
        SNAPSHOT_SQL, request.environment, request.service, request.version, request.commit, request.change_id, now
    )
    row = _json(value)  # one JSON document (one decoding) for the whole snapshot
    env = row["environment"]
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
            for f in row["freezes"]
        ],
        windows=[
            WindowRule(
                days=tuple(w["days"]),
                start=time.fromisoformat(w["start"]),
                end=time.fromisoformat(w["end"]),
                timezone=w["timezone"],
            )
            for w in row["windows"]
        ],
        changes=[policy.ChangeInfo(**c) for c in row["changes"]],
        tests=[policy.SuiteResult(suite=t["suite"], outcome=t["outcome"]) for t in row["tests"]],
        scans=[policy.ScanResult(tool=s["tool"], critical=s["critical"], high=s["high"]) for s in row["scans"]],
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


def _table(table: Table) -> str:
    return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'


def _columns(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{n}"' for n in names)


DECISION_COLUMNS = (
    "decision_id",
    "service",
    "environment",
    "version",
    "commit",
    "decision",
    "reasons",
    "change_id",
    "change_auto_created",
    "requested_by",
    "evaluated_at",
)


def _record_sql(outbox: Table) -> str:
    """Decisions with their audit entries, their ``gate.evaluated`` outbox rows and the draft changes denials ask
    for, in one statement: one round trip for a whole batch of decisions (see ``record``). Its parameters are
    arrays, one per column of ``record_row``'s rows: the decision (DECISION_COLUMNS), the outbox row (OUTBOX
    columns), the audit entry (audit.COLUMNS), and the draft change's title (NULL: no draft). A draft reuses its
    decision's change id, service, environment, version and time. Rows are inserted in the order given, so the
    outbox's ``seq`` follows the order the decisions were taken in."""
    decisions = GateDecisionRecord.__table__
    changes = ChangeView.__table__
    assert isinstance(decisions, Table) and isinstance(changes, Table)
    parts = [
        *((f"d_{c}", decisions.c[c]) for c in DECISION_COLUMNS),
        *((f"o_{c}", outbox.c[c]) for c in OUTBOX_COLUMNS),
        *((f"a_{c}", audit.AUDIT.c[c]) for c in audit_trail.COLUMNS),
        ("title", changes.c.title),
    ]
    pick = dict(parts)

    def values(prefix: str, names: tuple[str, ...]) -> str:
        return ", ".join(picked(f"{prefix}{c}", pick[f"{prefix}{c}"]) for c in names)

    return (
        f"WITH u AS MATERIALIZED (SELECT * FROM {unnest_rows(parts)}), "
        f"draft AS (INSERT INTO {_table(changes)} (change_id, number, type, service, environment, state,"
        f" state_rank, title, version, auto_created, updated_at)"
        f" SELECT u.d_change_id, NULL, 'normal', u.d_service, u.d_environment, 'draft', {int(DRAFT_RANK)}, u.title,"
        " u.d_version, true, u.d_evaluated_at FROM u WHERE u.title IS NOT NULL ORDER BY u.n"
        " ON CONFLICT DO NOTHING), "
        f"decision AS (INSERT INTO {_table(decisions)} ({_columns(DECISION_COLUMNS)})"
        f" SELECT {values('d_', DECISION_COLUMNS)} FROM u ORDER BY u.n), "
        f"entry AS (INSERT INTO {_table(audit.AUDIT)} ({_columns(audit_trail.COLUMNS)})"
        f" SELECT {values('a_', audit_trail.COLUMNS)} FROM u ORDER BY u.n) "
        f"INSERT INTO {_table(outbox)} ({_columns(OUTBOX_COLUMNS)})"
        f" SELECT {values('o_', OUTBOX_COLUMNS)} FROM u ORDER BY u.n"
    )


_RECORD_SQL: dict[Table, str] = {}


def record_sql(outbox: Table) -> str:
    sql = _RECORD_SQL.get(outbox)
    if sql is None:
        sql = _RECORD_SQL[outbox] = _record_sql(outbox)
    return sql


def record_arrays(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """``record_sql``'s parameters for ``rows`` (each a ``record_row``): one array per column."""
    return [list(column) for column in zip(*rows, strict=True)]


async def record(driver: Any, outbox: Table, rows: Sequence[Sequence[Any]]) -> None:
    """Record ``rows`` (``record_row``s) on ``driver``, in one statement: all of them, or none."""
    await driver.execute(record_sql(outbox), *record_arrays(rows))


class DecisionRecords(NamedTuple):
    read: dict[str, Any]  # GateDecisionRead in JSON: the HTTP answer, GET /gates/decisions/{id}, the audit entry
    event: dict[str, Any]  # GateEvaluated in JSON: the outbox row's data
    at: datetime  # evaluated_at (UTC)

    def model(self) -> GateDecisionRead:
        """The answer as the model (what ``evaluate`` returns to the deploy route)."""
        read = self.read
        return GateDecisionRead.model_construct(
            decision=read["decision"],
            reasons=[GateReasonRead.model_construct(code=r["code"], message=r["message"]) for r in read["reasons"]],
            decision_id=read["decision_id"],
            change_id=read["change_id"],
            evaluated_at=self.at,
            service=read["service"],
            environment=read["environment"],
            version=read["version"],
            commit=read["commit"],
            change_auto_created=read["change_auto_created"],
        )


def decision_records(
    request: policy.GateRequest,
    decision: policy.Decision,
    *,
    decision_id: str,
    change_id: str | None,
    protected: bool,
    requested_by: str | None,
    at: datetime,
) -> DecisionRecords:
    """The decision as it is answered and recorded, and as ``gate.evaluated`` publishes it. Built directly rather
    than by validating the pydantic models and dumping them again (the gate's hot path): every value is valid by
    construction (``at`` is UTC), and tests/unit/test_gate_records.py checks the result against the models."""
    reasons = [{"code": r.code, "message": r.message} for r in decision.reasons]
    evaluated_at = to_jsonable_python(at)
    create = decision.create_change
    read = {
        "decision": decision.decision,
        "reasons": reasons,
        "decision_id": decision_id,
        "change_id": change_id,
        "evaluated_at": evaluated_at,
        "service": request.service,
        "environment": request.environment,
        "version": request.version,
        "commit": request.commit,
        "change_auto_created": create,
    }
    event = {
        "decision_id": decision_id,
        "service": request.service,
        "environment": request.environment,
        "version": request.version,
        "commit": request.commit,
        "decision": decision.decision,
        "reasons": reasons,
        "change_id": change_id,
        "change_auto_created": create,
        "protected": protected,
        "requested_by": requested_by,
        "evaluated_at": evaluated_at,
    }
    return DecisionRecords(read, event, at)


async def _decide(
    driver: Any,
    outbox: Outbox,
    request: policy.GateRequest,
    *,
    requested_by: str | None,
    now: datetime,
    actor: Actor,
) -> tuple[DecisionRecords, list[Any]]:
    """Read the snapshot on ``driver`` and decide: the decision's records, and its ``record_row``: the decision,
    its event, its audit entry and the title of the draft change a denial may ask for (None: no draft)."""
    snapshot = await load_snapshot(driver, request, now)
    decision = policy.evaluate(request, snapshot, now)
    decision_id = str(uuid.uuid4())
    change_id = decision.change_id
    create = decision.create_change
    if create:
        # change-svc drafts the change under this id when it sees the event; until then the projection holds a
        # draft so that the pipeline's retries point at the same change instead of drafting one each time.
        change_id = str(uuid.uuid4())
    at = now.astimezone(UTC)  # the contract's Timestamp: UTC
    records = decision_records(
        request,
        decision,
        decision_id=decision_id,
        change_id=change_id,
        protected=bool(snapshot.environment and snapshot.environment.protected),
        requested_by=requested_by,
        at=at,
    )
    if not (request.service and request.environment):
        GateEvaluated.model_validate(records.event)  # an empty key is refused by the contract: raises, as it always did
    event = outbox.data_row(
        topic=GateEvaluated.topic, key=request.service, type=GateEvaluated.event_type, data=records.event
    )
    params: list[Any] = [
        decision_id,
        request.service,
        request.environment,
        request.version,
        request.commit,
        decision.decision,
        to_json(records.read["reasons"]).decode(),  # JSON text: what asyncpg takes for jsonb
        change_id,
        create,
        requested_by,
        now,
        *(event[c] for c in OUTBOX_COLUMNS[:-2]),
        to_json(event["data"]).decode(),
        to_json(event["headers"]).decode(),
    ]
    params += audit_trail.raw_values(audit.gate_evaluated_entry(actor, records.read, at))
    draft = f"Deploy {request.service} {request.version or request.commit or ''} to {request.environment}"
    params.append(draft if create else None)
    return records, params


async def evaluate(
    session: AsyncSession,
    outbox: Outbox,
    request: policy.GateRequest,
    *,
    requested_by: str | None,
    now: datetime,
    actor: Actor,
) -> GateDecisionRead:
    """Decide, and record the decision (row + audit entry + event, and the draft change a denial may ask for) in
    the caller's transaction (the session's unit of work)."""
    driver = await session_driver(session)
    records, row = await _decide(driver, outbox, request, requested_by=requested_by, now=now, actor=actor)
    await record(driver, outbox.table, [row])
    outbox.staged(session)  # wake the relay once the caller commits
    return records.model()


async def evaluate_alone(
    engine: AsyncEngine,
    outbox: Outbox,
    request: policy.GateRequest,
    *,
    requested_by: str | None,
    now: datetime,
    actor: Actor,
) -> dict[str, Any]:
    """A gate decision that is a use case of its own (POST /gates/evaluate): the snapshot on a pooled connection
    and without a session, then the decision recorded with the others being taken meanwhile (``Recorder``). The
    statement that records them is atomic by itself, so it needs no BEGIN and COMMIT: it commits, or fails and
    leaves nothing, before the answer is returned; the relay is woken after it, as the session's commit would have.
    Returns the answer in JSON (GateDecisionRead's)."""
    async with pooled_driver(engine) as driver:
        records, row = await _decide(driver, outbox, request, requested_by=requested_by, now=now, actor=actor)
    await Recorder.of(engine, outbox.table)(row)
    outbox.wake()
    return records.read


class Recorder:
    """Group commit for the gate's hot path: the decisions of concurrent requests recorded by one statement per
    batch (``greenzone_common.batching``), on a pooled connection of their own. One per engine and outbox."""

    _all: weakref.WeakKeyDictionary[AsyncEngine, Recorder] = weakref.WeakKeyDictionary()

    def __init__(self, engine: AsyncEngine, outbox: Table) -> None:
        self.engine = engine
        self.outbox = outbox
        self.coalescer: Coalescer[list[Any], None] = Coalescer(self._record)

    @classmethod
    def of(cls, engine: AsyncEngine, outbox: Table) -> Coalescer[list[Any], None]:
        recorder = cls._all.get(engine)
        if recorder is None or recorder.outbox is not outbox:
            recorder = cls._all[engine] = cls(engine, outbox)
        return recorder.coalescer

    async def _record(self, rows: list[list[Any]]) -> list[None]:
        async with pooled_driver(self.engine) as driver:
            await record(driver, self.outbox, rows)
        return [None] * len(rows)


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
