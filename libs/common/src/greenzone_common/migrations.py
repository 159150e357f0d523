"""Alembic, run per service: its own schema, its own version table, on start and by ``greenzone dev migrate``.

A service's ``migrations/env.py`` is two lines: ``run_env(Base.metadata)``. Migrations run under a transaction-level
advisory lock, so replicas starting together migrate once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.operations import Operations
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine

from greenzone_common.plumbing import notify_channel, plumbing_tables
from greenzone_common.settings import CommonSettings

VERSION_TABLE = "alembic_version"


def alembic_config(script_location: Path, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("greenzone_schema", schema)
    return cfg


def _upgrade(connection: Connection, cfg: Config, schema: str, revision: str) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"greenzone.migrate.{schema}"})
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def migrate(settings: CommonSettings, script_location: Path, schema: str, revision: str = "head") -> None:
    """Bring ``schema`` to ``revision``. Safe to call from a running event loop (the app's lifespan)."""
    engine = create_async_engine(settings.sqlalchemy_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, alembic_config(script_location, schema), schema, revision)
    finally:
        await engine.dispose()


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's alembic env.py (online mode only)."""
    cfg = context.config
    schema = cfg.get_main_option("greenzone_schema") or target_metadata.schema
    assert schema, "the service MetaData must carry its schema"
    connection = cfg.attributes.get("connection")
    if connection is not None:
        _run(connection, target_metadata, schema)
        return

    async def standalone() -> None:
        engine = create_async_engine(CommonSettings().sqlalchemy_url)
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(_run, target_metadata, schema)
        await engine.dispose()

    asyncio.run(standalone())


def _run(connection: Connection, target_metadata: MetaData, schema: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        include_schemas=False,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def create_plumbing(op: Operations, schema: str) -> None:
    """Create the outbox, inbox and idempotency tables and the relay's NOTIFY trigger in ``schema`` (the first
    revision of each service; a later revision drops the trigger again, see ``drop_outbox_notify_trigger``)."""
    tables = plumbing_tables(MetaData(schema=schema))
    bind: Any = op.get_bind()
    for table in (tables.outbox, tables.inbox, tables.idempotency):
        table.create(bind)
    restore_outbox_notify_trigger(op, schema)  # as the first revision of every service had it; a later one drops it


def drop_outbox_notify_trigger(op: Operations, schema: str) -> None:
    """Remove the NOTIFY trigger ``create_plumbing`` put on the outbox: it made every use case's commit wait for
    PostgreSQL's database-wide notify lock. Outbox commits wake the relay through ``relay.Waker`` now."""
    op.execute(f'DROP TRIGGER IF EXISTS outbox_notify ON "{schema}".outbox')
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".outbox_notify()')


def restore_outbox_notify_trigger(op: Operations, schema: str) -> None:
    """The downgrade of ``drop_outbox_notify_trigger``."""
    channel = notify_channel(schema)
    op.execute(
        f"""CREATE FUNCTION "{schema}".outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END $$"""
    )
    op.execute(
        f"""CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
        FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".outbox_notify()"""
    )


def outbox_created_at_brin(op: Operations, schema: str) -> None:
    """The outbox's ``created_at`` index as BRIN instead of btree: outbox rows are appended in ``created_at`` order,
    so block range summaries serve retention and ``replay --since`` while every insert (one or more per use case)
    stops paying a btree insertion."""
    _recreate_outbox_created_at(op, schema, "brin")


def outbox_created_at_btree(op: Operations, schema: str) -> None:
    """The downgrade of ``outbox_created_at_brin``."""
    _recreate_outbox_created_at(op, schema, "btree")


def _recreate_outbox_created_at(op: Operations, schema: str, method: str) -> None:
    name = f"ix_{schema}_outbox_created_at"
    op.execute(f'DROP INDEX IF EXISTS "{schema}"."{name}"')
    op.execute(f'CREATE INDEX "{name}" ON "{schema}".outbox USING {method} (created_at)')


def outbox_id_not_unique(op: Operations, schema: str) -> None:
    """No unique index on the outbox's ``id``: nothing looks a row up by it, and every staged event paid a btree
    insertion for it (some 2 µs of PostgreSQL CPU a row in a scratch replay of 500-row inserts). Ids are random
    UUIDs, or for a retold CDEvent derived from the id of a fact recorded once; consumers deduplicate by
    ``(source, id)`` in their inbox whatever reaches them."""
    op.execute(f'ALTER TABLE "{schema}".outbox DROP CONSTRAINT IF EXISTS outbox_id_key')


def outbox_id_unique(op: Operations, schema: str) -> None:
    """The downgrade of ``outbox_id_not_unique``."""
    op.execute(f'ALTER TABLE "{schema}".outbox ADD CONSTRAINT outbox_id_key UNIQUE (id)')


def drop_plumbing(op: Operations, schema: str) -> None:
    op.execute(f'DROP TABLE IF EXISTS "{schema}".outbox, "{schema}".inbox, "{schema}".idempotency_keys CASCADE')
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".outbox_notify()')
