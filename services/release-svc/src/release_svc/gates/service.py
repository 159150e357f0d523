"""Gate use cases: load the snapshot from the local projections, decide, record the decision and publish it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any, NamedTuple

from pydantic_core import to_json, to_jsonable_python
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from greenzone_common import audit as audit_trail
from greenzone_common.audit import Actor
from greenzone_common.batching import Coalescer, one_per
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

# One round trip: everything the rules need, as one JSON document per request, for a batch of requests (``Reader``)
# or for one (the deploy route, in its transaction). Arrays, one per parameter: environment, service, version,
# commit, change_id (version, commit and change_id may be NULL), now; one row per request, in the order given.
SNAPSHOT_SQL = """
SELECT s.snapshot FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
  WITH ORDINALITY AS u(environment, service, version, commit, change_id, now, n)
CROSS JOIN LATERAL (
WITH env AS (
    SELECT name, rank, protected, production FROM release.environments WHERE name = u.environment
), lower_env AS (
    SELECT e.name FROM release.environments e, env WHERE e.rank < env.rank ORDER BY e.rank DESC LIMIT 1
)
SELECT json_build_object(
  'environment', (SELECT row_to_json(env) FROM env),
  'lower_environment', (SELECT name FROM lower_env),
  'promoted', EXISTS (
    SELECT 1 FROM release.deployments d, lower_env
    WHERE d.service = u.service AND d.environment = lower_env.name AND d.outcome = 'success'
      AND ((u.version IS NOT NULL AND d.version = u.version)
        OR (u.commit IS NOT NULL AND d.commit = u.commit))
  ),
  'freezes', (SELECT coalesce(json_agg(f), '[]') FROM (
     SELECT id, name, start, "end", environments, services, reason FROM release.freezes
     WHERE lifted_at IS NULL AND start <= u.now AND "end" > u.now) f),
  'windows', (SELECT coalesce(json_agg(w), '[]') FROM (
     SELECT days, start, "end", timezone FROM release.windows WHERE environment = u.environment) w),
  'changes', (SELECT coalesce(json_agg(c), '[]') FROM (
     SELECT change_id, number, type, service, environment, state, version FROM release.changes
     WHERE (service = u.service AND environment = u.environment AND state_rank <= 3)
        OR change_id = u.change_id) c),
  'tests', (SELECT coalesce(json_agg(t), '[]') FROM (
     SELECT DISTINCT ON (coalesce(suite, '')) suite, outcome FROM release.test_reports
     WHERE service = u.service
       AND ((u.version IS NOT NULL AND version = u.version)
         OR (u.commit IS NOT NULL AND commit = u.commit))
     ORDER BY coalesce(suite, ''), reported_at DESC, id DESC) t),
  'scans', (SELECT coalesce(json_agg(s), '[]') FROM (
     SELECT DISTINCT ON (coalesce(tool, '')) tool, critical, high FROM release.scan_reports
     WHERE service = u.service
       AND ((u.version IS NOT NULL AND version = u.version)
         OR (u.commit IS NOT NULL AND commit = u.commit))
     ORDER BY coalesce(tool, ''), reported_at DESC, id DESC) s)
) AS snapshot
) s ORDER BY u.n
"""


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def read_snapshots(driver: Any, asks: Sequence[tuple[policy.GateRequest, datetime]]) -> list[Any]:
    """The projections' snapshots for ``asks`` (request, now), read on ``driver`` (an asyncpg connection) in one
    statement: one JSON document each, in order."""
    columns = zip(*((r.environment, r.service, r.version, r.commit, r.change_id, now) for r, now in asks), strict=True)
    return [row[0] for row in await driver.fetch(SNAPSHOT_SQL, *(list(c) for c in columns))]


async def load_snapshot(driver: Any, request: policy.GateRequest, now: datetime) -> policy.Snapshot:
    """The projections' snapshot for one request, read on ``driver`` (an asyncpg connection)."""
    (value,) = await read_snapshots(driver, [(request, now)])
    return snapshot_of(value)


def snapshot_of(value: Any) -> policy.Snapshot:
    """The snapshot of one of ``SNAPSHOT_SQL``'s documents."""
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


def _decide(
    snapshot: policy.Snapshot,
    outbox: Outbox,
    request: policy.GateRequest,
    *,
    requested_by: str | None,
    now: datetime,
    actor: Actor,
) -> tuple[DecisionRecords, list[Any]]:
    """Decide on ``snapshot``: the decision's records, and its ``record_row``: the decision, its event, its audit
    entry and the title of the draft change a denial may ask for (None: no draft)."""
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
    snapshot = await load_snapshot(driver, request, now)
    records, row = _decide(snapshot, outbox, request, requested_by=requested_by, now=now, actor=actor)
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
    """A gate decision that is a use case of its own (POST /gates/evaluate): its snapshot read, then its decision
    recorded, each with those of the other requests in flight (``GateBatches``: one statement per batch, on pooled
    connections, without sessions). The recording statement is atomic by itself, so it needs no BEGIN and COMMIT:
    it commits, or fails and leaves nothing, before the answer is returned; the relay is woken after it, as the
    session's commit would have. Returns the answer in JSON (GateDecisionRead's)."""
    batches = GateBatches.of(engine, outbox.table)
    snapshot = snapshot_of(await batches.read((request, now)))
    records, row = _decide(snapshot, outbox, request, requested_by=requested_by, now=now, actor=actor)
    await batches.record(row)
    outbox.wake()
    return records.read


class GateBatches:
    """Group reads and group commit for the gate's hot path (``greenzone_common.batching``): the snapshots of the
    requests in flight read by one statement per batch, and their decisions recorded by one statement per batch.
    One per engine (per process and database)."""

    def __init__(self, engine: AsyncEngine, outbox: Table) -> None:
        self.engine = engine
        self.outbox = outbox
        self.read: Coalescer[tuple[policy.GateRequest, datetime], Any] = Coalescer(self._read)
        self.record: Coalescer[list[Any], None] = Coalescer(self._record)

    @classmethod
    def of(cls, engine: AsyncEngine, outbox: Table) -> GateBatches:
        return one_per(engine, cls, lambda: cls(engine, outbox))

    async def _read(self, asks: list[tuple[policy.GateRequest, datetime]]) -> list[Any]:
        async with pooled_driver(self.engine) as driver:
            return await read_snapshots(driver, asks)

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
