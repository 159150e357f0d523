"""The indexes each accepted event pays for serve the queries that need them (PostgreSQL uses a partial index only
when it can prove the query's condition implies the index's; a bound parameter in that condition would silently
defeat it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

from greenzone_common.migrations import migrate
from greenzone_common.relay import expire_sql, replay_sql
from pipeline_svc.config import Settings
from pipeline_svc.facts.service import CHANGE_CREATED_AT
from pipeline_svc.main import SPEC

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def migrated(settings: Settings, db: asyncpg.Connection) -> asyncpg.Connection:
    await migrate(settings, SPEC.migrations, SPEC.schema)
    return db


async def plan(db: asyncpg.Connection, sql: str, *args: object) -> str:
    """The plan of ``sql`` with sequential scans priced out: the index chosen if one can serve it at all."""
    async with db.transaction():
        await db.execute("SET LOCAL enable_seqscan = off")
        rows = await db.fetch(f"EXPLAIN {sql}", *args)
    return "\n".join(r[0] for r in rows)


async def test_the_change_created_lookup_uses_its_partial_index(migrated: asyncpg.Connection) -> None:
    sql = str(CHANGE_CREATED_AT.compile(dialect=pg_asyncpg.dialect()))  # as the service sends it: $1 the subject

    assert "ix_raw_events_change_created" in await plan(migrated, sql, "change-1")


async def test_outbox_retention_and_replay_use_the_created_at_index(migrated: asyncpg.Connection) -> None:
    assert "ix_pipeline_outbox_created_at" in await plan(migrated, expire_sql("pipeline"), timedelta(days=7))
    assert "ix_pipeline_outbox_created_at" in await plan(
        migrated, replay_sql("pipeline"), datetime(2026, 1, 1, tzinfo=UTC)
    )


async def test_the_tables_every_accepted_event_writes_keep_only_the_indexes_something_uses(
    migrated: asyncpg.Connection,
) -> None:
    rows = await migrated.fetch(
        "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'pipeline'"
        " AND tablename IN ('raw_events', 'runs', 'outbox')"
    )
    assert sorted((r["tablename"], r["indexname"]) for r in rows) == [
        ("outbox", "ix_pipeline_outbox_created_at"),  # BRIN: retention and replay --since
        ("outbox", "ix_pipeline_outbox_seq"),  # the unpublished rows, in the relay's order
        ("outbox", "outbox_pkey"),  # seq
        ("raw_events", "ix_raw_events_change_created"),  # change_created_at
        ("raw_events", "ix_raw_events_received_at"),  # BRIN
        ("raw_events", "pk_raw_events"),  # the id facts and answers refer to
        ("raw_events", "uq_raw_events_origin"),  # (origin, delivery_key): a redelivery is recognised
        ("runs", "ix_runs_service_finished"),  # GET /runs?service=, report figures
        ("runs", "ix_runs_updated"),  # GET /runs?since= and its pages
        ("runs", "pk_runs"),  # uuid5 of (source, kind, run_key): one row per run
    ]
