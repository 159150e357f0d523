"""Prebuilt statements of the hot use cases (recording a change, an approver's decision) and the plain rows they
read and write, so that a request costs few round trips and no ORM unit of work.

Each statement is built once, at import time, and executed with a parameter dict: SQLAlchemy serves its compiled
form from its cache, and the values go to asyncpg as they are (no per-request construct, no bind coercion). A use
case's writes (the change row or its new state, the audit entry, the outbox rows) go in one statement: data-modifying
CTEs, every outbox row through one ``unnest`` in staging order. The column lists come from the tables' metadata.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

from change_svc.changes.models import Approval, Change, HistoryEntry
from change_svc.db import SCHEMA
from greenzone_common.outbox import Outbox

CHANGES: Table = Change.__table__  # type: ignore[assignment]
APPROVALS: Table = Approval.__table__  # type: ignore[assignment]
HISTORY: Table = HistoryEntry.__table__  # type: ignore[assignment]

#: the columns written when a change is recorded (the others keep their defaults: NULL)
CREATE_COLUMNS = (
    "id",
    "number",
    "title",
    "description",
    "type",
    "service",
    "environment",
    "state",
    "outcome",
    "requested_by",
    "risk",
    "required_approvals",
    "auto_approved",
    "auto_approval_reasons",
    "auto_created",
    "evidence",
    "planned_start",
    "planned_end",
    "template_id",
    "release_id",
    "version",
    "commits",
    "created_at",
    "updated_at",
)
HISTORY_COLUMNS = tuple(c.name for c in HISTORY.c if c.name != "id")
APPROVAL_COLUMNS = ("by", "decision", "comment", "cab", "policy", "at")
OUTBOX_COLUMNS = ("id", "topic", "key", "type", "source", "subject", "time", "data", "headers")
_OUTBOX_TYPES = ("uuid", "text", "text", "text", "text", "text", "timestamptz", "text", "text")


def _q(name: str) -> str:
    return f'"{name}"'


def _values(table: Table, columns: tuple[str, ...], prefix: str) -> str:
    """``(col, …) VALUES (:prefix_col, …)``; JSONB columns take their JSON text."""
    binds = []
    for name in columns:
        bind = f":{prefix}{name}"
        if table.c[name].type.__class__.__name__ == "JSONB":
            bind = f"CAST({bind} AS jsonb)"
        binds.append(bind)
    return f"({', '.join(_q(c) for c in columns)}) VALUES ({', '.join(binds)})"


def _fq(table: Table) -> str:
    return f'"{SCHEMA}"."{table.name}"'


def _history_cte() -> str:
    return f"h AS (INSERT INTO {_fq(HISTORY)} {_values(HISTORY, HISTORY_COLUMNS, 'h_')})"


def _outbox_insert() -> str:
    arrays = ", ".join(f"CAST(:o_{c} AS {t}[])" for c, t in zip(OUTBOX_COLUMNS, _OUTBOX_TYPES, strict=True))
    picks = ", ".join(f"r.{c}::jsonb" if c in ("data", "headers") else f"r.{_q(c)}" for c in OUTBOX_COLUMNS)
    return (
        f'INSERT INTO "{SCHEMA}".outbox ({", ".join(_q(c) for c in OUTBOX_COLUMNS)}) '
        f"SELECT {picks} FROM unnest({arrays}) WITH ORDINALITY AS r({', '.join(OUTBOX_COLUMNS)}, n) ORDER BY r.n"
    )


#: the change, its audit entry and its outbox rows
INSERT_CHANGE: TextClause = text(
    f"WITH c AS (INSERT INTO {_fq(CHANGES)} {_values(CHANGES, CREATE_COLUMNS, 'c_')}), {_history_cte()} "
    + _outbox_insert()
)

#: a decision's new state of the change, its audit entry and its outbox rows
UPDATE_DECIDED: TextClause = text(
    f"WITH c AS (UPDATE {_fq(CHANGES)} SET state = :c_state, updated_at = :c_updated_at, "
    f"decided_at = :c_decided_at WHERE id = :c_id), {_history_cte()} " + _outbox_insert()
)

_CHANGE_COLUMNS = ", ".join(_q(c.name) for c in CHANGES.c)
LOCK_BY_ID: TextClause = text(f"SELECT {_CHANGE_COLUMNS} FROM {_fq(CHANGES)} WHERE id = :id FOR UPDATE")
LOCK_BY_NUMBER: TextClause = text(f"SELECT {_CHANGE_COLUMNS} FROM {_fq(CHANGES)} WHERE number = :number FOR UPDATE")

#: an approver's decision (nothing when they decided already) and, read after the change's lock was taken, the
#: decisions recorded before it, in the order they were recorded
INSERT_APPROVAL: TextClause = text(
    f"WITH a AS (INSERT INTO {_fq(APPROVALS)} (change_id, {', '.join(_q(c) for c in APPROVAL_COLUMNS)}) "
    f"VALUES (:change_id, {', '.join(':a_' + c for c in APPROVAL_COLUMNS)}) "
    f"ON CONFLICT (change_id, {_q('by')}) DO NOTHING RETURNING id, {', '.join(_q(c) for c in APPROVAL_COLUMNS)}) "
    f"SELECT false AS new, id, {', '.join(_q(c) for c in APPROVAL_COLUMNS)} FROM {_fq(APPROVALS)} "
    f"WHERE change_id = :change_id "
    f"UNION ALL SELECT true, id, {', '.join(_q(c) for c in APPROVAL_COLUMNS)} FROM a ORDER BY new, id"
)


@dataclass(slots=True)
class ApprovalRow:
    by: str
    decision: str
    comment: str
    cab: bool
    policy: bool
    at: datetime


@dataclass(slots=True)
class ChangeRow:
    """A change as a plain object: what ``service.to_read`` and the event builders read of a ``Change``."""

    id: str
    number: int
    title: str
    description: str
    type: str
    service: str
    environment: str
    state: str
    outcome: str | None
    requested_by: str
    risk: dict[str, Any]
    required_approvals: int
    auto_approved: bool
    auto_approval_reasons: list[str]
    auto_created: bool
    evidence: dict[str, Any]
    planned_start: datetime | None
    planned_end: datetime | None
    template_id: str | None
    release_id: str | None
    version: str | None
    commits: list[str]
    created_at: datetime
    updated_at: datetime
    review_due: datetime | None = None
    review_summary: str | None = None
    reviewed_by: str | None = None
    cancel_reason: str | None = None
    deployment_ref: str | None = None
    submitted_at: datetime | None = None
    decided_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    closed_at: datetime | None = None
    approvals: list[ApprovalRow] = field(default_factory=list)

    @property
    def display_number(self) -> str:
        return f"CHG-{self.number:06d}"


def create_params(change: ChangeRow) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in CREATE_COLUMNS:
        value = getattr(change, name)
        params["c_" + name] = (
            json.dumps(value) if name in ("risk", "auto_approval_reasons", "evidence", "commits") else value
        )
    return params


def history_params(row: dict[str, Any]) -> dict[str, Any]:
    return {"h_" + name: json.dumps(row[name]) if name == "details" else row[name] for name in HISTORY_COLUMNS}


def cloudevent_row(outbox: Outbox, *, topic: str, type: str, subject: str, data: dict[str, Any]) -> dict[str, Any]:
    """The outbox row ``Outbox.add_cloudevent`` writes for a CloudEvent whose type is not Greenzone's own (its id
    derived from the CDEvent's, so a retried use case stages the same event)."""
    trace: dict[str, str] = {}
    propagate.inject(trace)
    event_id = uuid.uuid4()
    context = data.get("context")
    if isinstance(context, dict) and context.get("id"):
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{outbox.source}/{context['id']}")
    return {
        "id": event_id,
        "topic": topic,
        "key": subject,
        "type": type,
        "source": outbox.source,
        "subject": subject,
        "time": datetime.now(UTC),
        "data": data,
        "headers": trace,
    }


def outbox_params(rows: list[dict[str, Any]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in OUTBOX_COLUMNS:
        if name in ("data", "headers"):
            params["o_" + name] = [json.dumps(r[name]) for r in rows]
        else:
            params["o_" + name] = [r[name] for r in rows]
    return params


async def write(
    session: AsyncSession, outbox: Outbox, stmt: TextClause, params: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    """Execute one of the write statements with its outbox rows; the relay is woken once the transaction commits."""
    await session.execute(stmt, {**params, **outbox_params(rows)})
    staged = getattr(outbox, "staged", None)
    if staged is not None:
        staged(session)
