"""Prebuilt statements of the hot use cases (recording a change, an approver's decision) and the plain rows they
read and write, so that a request costs few round trips and no ORM unit of work.

Each statement is built once, at import time, and executed with a parameter dict: SQLAlchemy serves its compiled
form from its cache, and the values go to asyncpg as they are (no per-request construct, no bind coercion). A use
case's writes (the change row or its new state, the audit entry, the outbox rows) go in one statement: data-modifying
CTEs, every outbox row through one ``unnest`` in staging order. The column lists come from the tables' metadata.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

from change_svc.changes.models import Approval, Change, HistoryEntry
from change_svc.db import SCHEMA
from greenzone_common.bulk import BulkInsert
from greenzone_common.outbox import COLUMNS as OUTBOX_COLUMNS
from greenzone_common.outbox import Outbox
from greenzone_common.plumbing import plumbing_tables

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
OUTBOX_TABLE: Table = plumbing_tables(CHANGES.metadata).outbox


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


#: the outbox rows of the two writes (their parameters ``o_c0`` …, from ``OUTBOX_ROWS.parameters``)
OUTBOX_ROWS = BulkInsert(OUTBOX_TABLE, OUTBOX_COLUMNS, returning=[], ordered=True, prefix="o_")
#: … only when the decision's ``c`` updated the change
OUTBOX_ROWS_IF_DECIDED = BulkInsert(
    OUTBOX_TABLE, OUTBOX_COLUMNS, returning=[], ordered=True, where="EXISTS (SELECT FROM c)", prefix="o_"
)


#: the change, its audit entry and its outbox rows
INSERT_CHANGE: TextClause = text(
    f"WITH c AS (INSERT INTO {_fq(CHANGES)} {_values(CHANGES, CREATE_COLUMNS, 'c_')}), {_history_cte()} "
    + OUTBOX_ROWS.sql
)


def _cast(table: Table, name: str, bind: str) -> str:
    """``bind`` cast to the column's type without its length: an INSERT … SELECT does not infer parameter types from
    its target columns, and a cast to varchar(n) would truncate where the insert fails."""
    column_type = table.c[name].type
    if column_type.__class__.__name__ == "JSONB":
        return f"CAST({bind} AS jsonb)"
    pg = {str: "text", int: "bigint", bool: "boolean", datetime: "timestamptz"}[column_type.python_type]
    return f"CAST({bind} AS {pg})"


def _select_from_c(table: Table, columns: tuple[str, ...], prefix: str) -> str:
    """``(change_id, col, …) SELECT c.id, CAST(:prefix_col AS …), … FROM c``: one row when ``c`` updated the change."""
    names = [name for name in columns if name != "change_id"]
    picks = ", ".join(_cast(table, name, f":{prefix}{name}") for name in names)
    return f"(change_id, {', '.join(_q(c) for c in names)}) SELECT c.id, {picks} FROM c"


_READ_DECISION = (
    "SELECT "
    + ", ".join(f"c.{_q(c.name)}" for c in CHANGES.c)
    + ", c.xmin::text AS row_version, a.id AS a_id, "
    + ", ".join(f"a.{_q(n)} AS a_{n}" for n in APPROVAL_COLUMNS)
    + f" FROM {_fq(CHANGES)} c LEFT JOIN {_fq(APPROVALS)} a ON a.change_id = c.id WHERE c.{{key}} = :key ORDER BY a.id"
)
#: a change with its decisions in the order they were recorded (one row each; one row with NULLs when there is
#: none) and its row version, all read in one snapshot
READ_FOR_DECISION_BY_ID: TextClause = text(_READ_DECISION.format(key="id"))
READ_FOR_DECISION_BY_NUMBER: TextClause = text(_READ_DECISION.format(key="number"))

#: an approver's decision, the change's new state, its audit entry and its outbox rows, all written only if the
#: change row is still the version the decision was made on (``:row_version``), else nothing at all (rowcount 0).
#: Every write of a change's approvals also updates its row, so an unchanged version means unchanged approvals.
WRITE_DECISION: TextClause = text(
    f"WITH c AS (UPDATE {_fq(CHANGES)} SET state = :c_state, updated_at = :c_updated_at, "
    f"decided_at = :c_decided_at WHERE id = :c_id AND xmin::text = CAST(:row_version AS text) RETURNING id), "
    f"a AS (INSERT INTO {_fq(APPROVALS)} {_select_from_c(APPROVALS, ('change_id', *APPROVAL_COLUMNS), 'a_')}), "
    f"h AS (INSERT INTO {_fq(HISTORY)} {_select_from_c(HISTORY, HISTORY_COLUMNS, 'h_')}) " + OUTBOX_ROWS_IF_DECIDED.sql
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
    #: the row version (xmin) it was read at, for a write that applies only if nobody changed it since
    row_version: str | None = None

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


_CHANGE_FIELDS = tuple(c.name for c in CHANGES.c)


def change_with_approvals(rows: Sequence[Any]) -> ChangeRow | None:
    """The change of ``READ_FOR_DECISION_*``'s rows (None when there is none)."""
    if not rows:
        return None
    first = rows[0]._mapping
    change = ChangeRow(**{name: first[name] for name in _CHANGE_FIELDS}, row_version=first["row_version"])
    change.approvals = [
        ApprovalRow(r.a_by, r.a_decision, r.a_comment, r.a_cab, r.a_policy, r.a_at) for r in rows if r.a_id is not None
    ]
    return change


async def write(
    session: AsyncSession, outbox: Outbox, stmt: TextClause, params: dict[str, Any], rows: list[dict[str, Any]]
) -> bool:
    """Execute one of the write statements with its outbox rows; the relay is woken once the transaction commits.
    False when it wrote nothing (``WRITE_DECISION`` on a change that changed since it was read)."""
    result = await session.execute(stmt, {**params, **OUTBOX_ROWS.parameters(rows)})
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    outbox.staged(session)
    return True
