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

from sqlalchemy import BigInteger, Column, Table, Text, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

from change_svc.changes.models import Approval, Change, HistoryEntry
from change_svc.db import SCHEMA
from greenzone_common.bulk import BulkInsert, picked, unnest_rows
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
#: the change, its audit entry and its outbox rows
INSERT_CHANGE: TextClause = text(
    f"WITH c AS (INSERT INTO {_fq(CHANGES)} {_values(CHANGES, CREATE_COLUMNS, 'c_')}), {_history_cte()} "
    + OUTBOX_ROWS.sql
)


#: changes with their decisions in the order they were recorded (one row each; one row with NULLs when there is
#: none) and their row versions, for a batch of keys (``$1`` ids, ``$2`` numbers: one of the two per key), each
#: row tagged with its key's place ``n``: one statement for the approvals in flight (``service.DecisionBatches``)
READ_FOR_DECISIONS = (
    "SELECT u.n, "
    + ", ".join(f"c.{_q(c.name)}" for c in CHANGES.c)
    + ", c.xmin::text AS row_version, a.id AS a_id, "
    + ", ".join(f"a.{_q(n)} AS a_{n}" for n in APPROVAL_COLUMNS)
    + " FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u(id, number, n)"
    + f" JOIN {_fq(CHANGES)} c ON c.id = u.id OR c.number = u.number"
    + f" LEFT JOIN {_fq(APPROVALS)} a ON a.change_id = c.id ORDER BY u.n, a.id"
)

_DECISION_PARTS: list[tuple[str, Column[Any]]] = [
    ("c_id", CHANGES.c.id),
    ("c_state", CHANGES.c.state),
    ("c_updated_at", CHANGES.c.updated_at),
    ("c_decided_at", CHANGES.c.decided_at),
    ("row_version", Column("row_version", Text())),
    *((f"a_{name}", APPROVALS.c[name]) for name in APPROVAL_COLUMNS),
    *((f"h_{name}", HISTORY.c[name]) for name in HISTORY_COLUMNS),
]
_DECISION_OUTBOX_PARTS: list[tuple[str, Column[Any]]] = [
    *((f"o_{name}", OUTBOX_TABLE.c[name]) for name in OUTBOX_COLUMNS),
    ("owner", Column("owner", BigInteger())),
]
_PARTS = dict(_DECISION_PARTS + _DECISION_OUTBOX_PARTS)


def _picks(prefix: str, names: Sequence[str], alias: str = "u") -> str:
    return ", ".join(picked(f"{prefix}{n}", _PARTS[f"{prefix}{n}"], alias) for n in names)


#: approvers' decisions, each with its change's new state, its audit entry and its outbox rows, each written only
#: if its change row is still the version the decision was made on (``row_version``), else nothing of it; returns
#: the places ``n`` of the decisions written. Arrays: ``_DECISION_PARTS``, then the outbox rows'
#: (``_DECISION_OUTBOX_PARTS``, ``owner`` the place of their decision). Two decisions on one change in one batch:
#: the update applies one of them, and the other is decided again on a fresh read, as for any concurrent write.
#: Every write of a change's approvals also updates its row, so an unchanged version means unchanged approvals.
WRITE_DECISIONS = (
    f"WITH u AS MATERIALIZED (SELECT * FROM {unnest_rows(_DECISION_PARTS)}), "
    f"c AS (UPDATE {_fq(CHANGES)} t SET state = u.c_state, updated_at = u.c_updated_at, decided_at = u.c_decided_at"
    " FROM u WHERE t.id = u.c_id AND t.xmin::text = u.row_version RETURNING t.id, u.n), "
    f"a AS (INSERT INTO {_fq(APPROVALS)} (change_id, {', '.join(_q(n) for n in APPROVAL_COLUMNS)})"
    f" SELECT c.id, {_picks('a_', APPROVAL_COLUMNS)} FROM c JOIN u ON u.n = c.n ORDER BY u.n), "
    f"h AS (INSERT INTO {_fq(HISTORY)} ({', '.join(_q(n) for n in HISTORY_COLUMNS)})"
    f" SELECT {_picks('h_', HISTORY_COLUMNS)} FROM c JOIN u ON u.n = c.n ORDER BY u.n), "
    f"o AS (INSERT INTO {_fq(OUTBOX_TABLE)} ({', '.join(_q(n) for n in OUTBOX_COLUMNS)})"
    f" SELECT {_picks('o_', OUTBOX_COLUMNS, 'o')}"
    f" FROM {unnest_rows(_DECISION_OUTBOX_PARTS, len(_DECISION_PARTS) + 1, 'o')} JOIN c ON c.n = o.owner"
    " ORDER BY o.n) "
    "SELECT n FROM c"
)


def decision_arrays(items: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[list[Any]]:
    """``WRITE_DECISIONS``' parameters for ``items``: (the decision's parameters by ``_DECISION_PARTS`` name, its
    outbox rows)."""
    arrays: list[list[Any]] = [[params[name] for params, _ in items] for name, _ in _DECISION_PARTS]
    outbox: list[list[Any]] = [[] for _ in _DECISION_OUTBOX_PARTS]
    for place, (_, rows) in enumerate(items, start=1):
        for row in rows:
            for i, name in enumerate(OUTBOX_COLUMNS):
                value = row[name]
                outbox[i].append(json.dumps(value) if name in ("data", "headers") else value)
            outbox[-1].append(place)
    return arrays + outbox


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
_JSON_FIELDS = frozenset(c.name for c in CHANGES.c if c.type.__class__.__name__ == "JSONB")


def changes_with_approvals(rows: Sequence[Any], keys: int) -> list[ChangeRow | None]:
    """The changes of ``READ_FOR_DECISIONS``' rows, one per key in order (None: no such change)."""
    grouped: list[list[Any]] = [[] for _ in range(keys)]
    for row in rows:
        grouped[row["n"] - 1].append(row)
    changes: list[ChangeRow | None] = []
    for group in grouped:
        if not group:
            changes.append(None)
            continue
        first = group[0]
        values = {name: first[name] for name in _CHANGE_FIELDS}
        for name in _JSON_FIELDS:
            if isinstance(values[name], str):
                values[name] = json.loads(values[name])
        change = ChangeRow(**values, row_version=first["row_version"])
        change.approvals = [
            ApprovalRow(r["a_by"], r["a_decision"], r["a_comment"], r["a_cab"], r["a_policy"], r["a_at"])
            for r in group
            if r["a_id"] is not None
        ]
        changes.append(change)
    return changes


async def write(
    session: AsyncSession, outbox: Outbox, stmt: TextClause, params: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    """Execute one of the write statements with its outbox rows; the relay is woken once the transaction commits."""
    await session.execute(stmt, {**params, **OUTBOX_ROWS.parameters(rows)})
    outbox.staged(session)
