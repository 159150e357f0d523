"""The tables every service owns in its own schema: outbox, inbox and idempotency keys.

They are declared once here and attached to each service's MetaData; each service's first migration creates them
with :func:`greenzone_common.migrations.create_plumbing`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID


@dataclass(frozen=True)
class PlumbingTables:
    outbox: Table
    inbox: Table
    idempotency: Table


def plumbing_tables(metadata: MetaData) -> PlumbingTables:
    """The plumbing tables in ``metadata`` (declared on first use; one app factory may run several times)."""
    prefix = f"{metadata.schema}." if metadata.schema else ""
    if prefix + "outbox" in metadata.tables:
        t = metadata.tables
        return PlumbingTables(t[prefix + "outbox"], t[prefix + "inbox"], t[prefix + "idempotency_keys"])
    outbox = Table(
        "outbox",
        metadata,
        # seq is the publication order. Use cases lock their aggregate row before writing its event, so for one
        # aggregate seq order is commit order (what per-aggregate ordering needs).
        Column("seq", BigInteger, Identity(always=True), primary_key=True),
        # ce_id, stable across retries; not indexed: nothing looks a row up by it (``outbox_id_not_unique``)
        Column("id", UUID(as_uuid=True), nullable=False),
        Column("topic", String(255), nullable=False),
        Column("key", Text, nullable=False),
        Column("type", String(255), nullable=False),
        Column("source", String(255), nullable=False),
        Column("subject", Text, nullable=False),
        Column("time", DateTime(timezone=True), nullable=False),
        Column("data", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),  # traceparent, tracestate
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Index(None, "seq", postgresql_where=text("published_at IS NULL")),
        # BRIN: rows arrive in created_at order, so a block range summary finds them (retention, replay --since) at
        # a fraction of a btree's cost per insert
        Index(None, "created_at", postgresql_using="brin"),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer_group", String(255), nullable=False),
        Column("ce_id", String(255), nullable=False),
        Column("ce_type", String(255), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer_group", "ce_id"),
    )
    idempotency = Table(
        "idempotency_keys",
        metadata,
        Column("principal", String(255), nullable=False),
        Column("key", String(255), nullable=False),
        Column("method", String(10), nullable=False),
        Column("path", Text, nullable=False),
        Column("request_hash", String(64), nullable=False),
        Column("status", Integer),  # NULL while the first request is in progress
        Column("response_headers", JSONB),
        Column("response_body", LargeBinary),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("principal", "key"),
    )
    return PlumbingTables(outbox=outbox, inbox=inbox, idempotency=idempotency)


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a service's relay."""
    return f"greenzone_outbox_{schema}"
