"""The audit trail: one append-only row per mutation — who (the token's ``sub``, or the event or background task that
acted), when, what (entity, id, action), from which request (request id, Idempotency-Key, method, path, W3C
``traceparent`` and trace id) and, where it means something, the entity before and after.

A use case writes its audit row with :func:`record` in its own transaction, beside its state change and its outbox
event: a rolled-back use case leaves no trace, a committed one is never missing from the trail. The table lives in
the service's own schema (:func:`audit_table`, created by :func:`create_audit_log` in a migration, which also makes
it append-only with a trigger) and is read back, paginated, with :func:`entries`. A hot path that writes its rows in
one statement of its own takes the entry's values from :func:`entry` and :func:`raw_values` (columns
:data:`COLUMNS`) instead.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from alembic.operations import Operations
from fastapi import Request
from opentelemetry import trace
from pydantic import BaseModel
from pydantic_core import to_json, to_jsonable_python
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.auth import Principal
from greenzone_common.contracts.common import Timestamp
from greenzone_common.envelope import ReceivedEvent
from greenzone_common.pagination import Page, PageParams, page_of

TABLE = "audit_log"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")

Via = Literal["request", "event", "system"]


def _current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


#: A path that ``urllib.parse.urlsplit`` gives back unchanged (what Starlette's ``request.url.path`` is built with):
#: such a path is read straight from the ASGI scope instead of building the request's whole URL.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~!$&'()*+,;=:@%-]*")
_REQUEST_HEADERS = {b"traceparent": 0, b"x-request-id": 1, b"idempotency-key": 2}


@dataclass(frozen=True)
class Actor:
    """Who acts, and through what: an HTTP request (a person or a tool with a token), a consumed event, or one of
    the service's own background tasks. ``sub`` is None only for the service itself (``system`` names the task)."""

    sub: str | None
    roles: frozenset[str] = frozenset()
    via: Via = "request"
    request_id: str | None = None
    idempotency_key: str | None = None
    method: str | None = None
    path: str | None = None
    traceparent: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    system: str | None = None
    trace_id: str | None = field(default_factory=_current_trace_id)

    @classmethod
    def from_request(cls, principal: Principal, request: Request) -> Actor:
        """The caller and its request. A request without ``X-Request-Id`` gets one, so every entry names one."""
        # the three headers in one pass over the ASGI scope (the first of each, like ``request.headers.get``)
        found: list[str | None] = [None, None, None]
        scope = request.scope
        for key, value in scope["headers"]:
            slot = _REQUEST_HEADERS.get(key)
            if slot is not None and found[slot] is None:
                found[slot] = value.decode("latin-1")
        traceparent, request_id, idempotency_key = found
        if traceparent is not None:
            traceparent = traceparent.strip().lower()
            if not _TRACEPARENT.match(traceparent):
                traceparent = None  # a malformed header is not evidence of anything
        path: str = scope["path"]
        if not _PLAIN_PATH.fullmatch(path):
            path = request.url.path
        return cls(
            sub=principal.sub,
            roles=principal.roles,
            via="request",
            request_id=(request_id or str(uuid.uuid4()))[:255],
            idempotency_key=idempotency_key or None,
            method=request.method,
            path=path[:500],
            traceparent=traceparent or None,
        )

    @classmethod
    def from_event(cls, event: ReceivedEvent, sub: str | None = None) -> Actor:
        """A consumed event (``sub``: who the event says acted, when it says so)."""
        return cls(sub=sub, via="event", event_type=event.type, event_id=event.id)

    @classmethod
    def background(cls, task: str) -> Actor:
        """One of the service's own background tasks (e.g. ending early life support when its period is over)."""
        return cls(sub=None, via="system", system=task)

    @property
    def is_human(self) -> bool:
        return self.via == "request"


def audit_table(metadata: MetaData) -> Table:
    """The audit table in ``metadata`` (declared on first use: one app factory may run several times)."""
    key = f"{metadata.schema}.{TABLE}" if metadata.schema else TABLE
    if key in metadata.tables:
        return metadata.tables[key]
    return Table(
        TABLE,
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),  # the order of the trail
        Column("entity", String(40), nullable=False),
        Column("entity_id", String(255), nullable=False),
        Column("action", String(60), nullable=False),
        Column("actor", String(200)),  # the token's sub; NULL for the service's own background tasks
        Column("via", String(10), nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("request_id", String(255)),
        Column("idempotency_key", String(255)),
        Column("method", String(10)),
        Column("path", String(500)),
        Column("traceparent", String(55)),
        Column("trace_id", String(32)),
        Column("event_type", String(255)),
        Column("event_id", String(255)),
        Column("system", String(100)),
        Column("before", JSONB),
        Column("after", JSONB),
        Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Index(f"ix_{TABLE}_entity", "entity", "entity_id", "id"),
        Index(f"ix_{TABLE}_actor", "actor", "id"),
    )


def create_audit_log(op: Operations, schema: str) -> None:
    """Create the audit table in ``schema`` and refuse every UPDATE and DELETE of it (the trail is append-only)."""
    bind: Any = op.get_bind()
    audit_table(MetaData(schema=schema)).create(bind)
    op.execute(
        f"""CREATE FUNCTION "{schema}".{TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{TABLE} is append-only'; END $$"""
    )
    op.execute(
        f"""CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON "{schema}".{TABLE}
        FOR EACH ROW EXECUTE FUNCTION "{schema}".{TABLE}_append_only()"""
    )
    op.execute(
        f"""CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON "{schema}".{TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".{TABLE}_append_only()"""
    )


def drop_audit_log(op: Operations, schema: str) -> None:
    op.execute(f'DROP TABLE IF EXISTS "{schema}".{TABLE}')
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".{TABLE}_append_only()')


def snapshot(obj: Any, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """The column values of an ORM object as JSON (``exclude``: secrets and anything else the trail must not
    keep). Taken before a change (``before``) and after it (``after``)."""
    mapper = inspect(obj).mapper
    values = {a.key: getattr(obj, a.key) for a in mapper.column_attrs if a.key not in exclude}
    result: dict[str, Any] = to_jsonable_python(values)
    return result


#: The columns an entry writes, in the order of :func:`raw_values` (``id`` is the table's identity).
COLUMNS = (
    "entity",
    "entity_id",
    "action",
    "actor",
    "via",
    "at",
    "request_id",
    "idempotency_key",
    "method",
    "path",
    "traceparent",
    "trace_id",
    "event_type",
    "event_id",
    "system",
    "before",
    "after",
    "details",
)
JSON_COLUMNS = frozenset({"before", "after", "details"})


def entry(
    actor: Actor,
    *,
    entity: str,
    entity_id: str,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: datetime | None = None,
    **details: Any,
) -> dict[str, Any]:
    """One entry's column values (details that are None are left out; ``before``, ``after`` and ``details`` as
    JSON values)."""
    return {
        "entity": entity,
        "entity_id": entity_id,
        "action": action,
        "actor": actor.sub,
        "via": actor.via,
        "at": at or datetime.now(UTC),
        "request_id": actor.request_id,
        "idempotency_key": actor.idempotency_key,
        "method": actor.method,
        "path": actor.path,
        "traceparent": actor.traceparent,
        "trace_id": actor.trace_id,
        "event_type": actor.event_type,
        "event_id": actor.event_id,
        "system": actor.system,
        "before": to_jsonable_python(before) if before is not None else None,
        "after": to_jsonable_python(after) if after is not None else None,
        "details": to_jsonable_python({k: v for k, v in details.items() if v is not None}) if details else {},
    }


def raw_values(values: dict[str, Any]) -> list[Any]:
    """An :func:`entry` as the parameters of a driver-level ``INSERT`` of :data:`COLUMNS` (JSON columns as JSON
    text, which is what asyncpg takes for ``jsonb``; None as JSON ``null``, as SQLAlchemy's JSONB writes it)."""
    return [to_json(values[c]).decode() if c in JSON_COLUMNS else values[c] for c in COLUMNS]


def insert_sql(table: Table, first: int = 1) -> str:
    """``INSERT INTO <schema>.audit_log (COLUMNS) VALUES ($first, …)``: one entry, for asyncpg."""
    name = f'"{table.schema}".{table.name}' if table.schema else table.name
    placeholders = ", ".join(f"${first + i}" for i in range(len(COLUMNS)))
    return f"INSERT INTO {name} ({', '.join(COLUMNS)}) VALUES ({placeholders})"


_INSERTS: dict[Table, Any] = {}


def _insert(table: Table) -> Any:
    """The table's INSERT, built once: executed with an entry as its parameters, its compiled form is cached (a
    statement given ``.values()`` builds a bound parameter per column on every execution)."""
    stmt = _INSERTS.get(table)
    if stmt is None:
        stmt = _INSERTS[table] = insert(table)
    return stmt


async def record(
    session: AsyncSession,
    table: Table,
    actor: Actor,
    *,
    entity: str,
    entity_id: str,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: datetime | None = None,
    **details: Any,
) -> None:
    """Append one entry in the session's transaction (details that are None are left out)."""
    values = entry(
        actor, entity=entity, entity_id=entity_id, action=action, before=before, after=after, at=at, **details
    )
    await session.execute(_insert(table), values)


class AuditEntryRead(BaseModel):
    id: int
    entity: str
    entity_id: str
    action: str
    actor: str | None
    via: Via
    at: Timestamp
    request_id: str | None
    idempotency_key: str | None
    method: str | None
    path: str | None
    traceparent: str | None
    trace_id: str | None
    event_type: str | None
    event_id: str | None
    system: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any]


async def entries(
    session: AsyncSession,
    table: Table,
    params: PageParams,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> Page[AuditEntryRead]:
    """The trail, oldest first, filtered; keyset-paginated on the entry id."""
    stmt = select(table)
    for column, value in (("entity", entity), ("entity_id", entity_id), ("actor", actor), ("action", action)):
        if value is not None:
            stmt = stmt.where(table.c[column] == value)
    if params.after:
        try:
            after = int(params.after[0])
        except (TypeError, ValueError):
            after = 0
        stmt = stmt.where(table.c.id > after)
    rows = (await session.execute(stmt.order_by(table.c.id).limit(params.limit + 1))).mappings().all()
    page = page_of([AuditEntryRead.model_validate(dict(r)) for r in rows], params, key=lambda e: [e.id])
    return page
