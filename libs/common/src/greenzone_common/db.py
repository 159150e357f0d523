"""Async SQLAlchemy 2 + asyncpg: one engine per service, sessions bound to the service's own schema.

Invariant: services ``flush()``; the route or handler that owns the use case commits once (``unit_of_work``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.util import greenlet_spawn

from greenzone_common.settings import CommonSettings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def schema_metadata(schema: str) -> MetaData:
    """A MetaData whose tables all live in ``schema`` (one PostgreSQL schema per service)."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def declarative_base(schema: str) -> type[DeclarativeBase]:
    metadata = schema_metadata(schema)

    class Base(DeclarativeBase):
        pass

    Base.metadata = metadata
    return Base


def make_engine(settings: CommonSettings) -> AsyncEngine:
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_overflow,
        pool_pre_ping=settings.database_pool_pre_ping,
        connect_args={"server_settings": {"application_name": settings.service_name}},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


async def session_driver(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, inside the session's transaction, for a hot path's hand-written
    statement. SQLAlchemy's asyncpg adapter sends BEGIN lazily, before its own first statement, so a statement sent
    to the driver before that would run (and commit) on its own: this flushes what the session holds (as its own
    execute would) and begins the transaction as the adapter would (isolation level, read-only). The session's commit
    or rollback ends it. The one place that knows the adapter's ``_started``/``_start_transaction``."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapter: Any = raw.dbapi_connection
    if not adapter._started:
        await adapter._start_transaction()
    return raw.driver_connection


@asynccontextmanager
async def pooled_driver(engine: AsyncEngine) -> AsyncIterator[Any]:
    """An asyncpg connection from ``engine``'s pool, outside any transaction: each statement on it commits by itself
    (a use case that is one atomic statement needs no BEGIN and COMMIT, two round trips of four). It goes back to
    the pool as ``AsyncConnection.close()`` would return it; one that died is discarded."""
    raw = await engine.raw_connection()
    driver: Any = raw.driver_connection
    try:
        yield driver
    finally:
        await greenlet_spawn(raw.invalidate if driver.is_closed() else raw.close)


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction per use case: commit on success, roll back on any error."""
    async with sessions() as session, session.begin():
        yield session


class FrozenInsert(PgInsert):
    """A PostgreSQL ``INSERT … ON CONFLICT`` whose compiled form SQLAlchemy caches.

    SQLAlchemy 2.0 never caches the PostgreSQL ``Insert`` (its ON CONFLICT clause has no cache key), so every
    execution compiled it again: about 0.3 ms of CPU per statement, the largest single cost of a webhook or a gate
    decision. A frozen insert is built once, at import time, and executed with parameters; its cache key is its
    identity, which never changes because :func:`frozen_insert` keeps every one alive (an id is never reused).
    """

    inherit_cache = True

    def _gen_cache_key(self, anon_map: Any, bindparams: Any) -> tuple[Any, ...]:
        return (id(self), FrozenInsert)


_FROZEN: list[FrozenInsert] = []


def frozen_insert(stmt: PgInsert) -> FrozenInsert:
    """``stmt`` (built without ``.values()``: the rows come as execution parameters) as a cached statement.
    Call it at module level: each call makes one more statement that lives as long as the process."""
    if stmt._values or stmt._multi_values:  # literal values would be frozen into the first compilation
        raise ValueError("a frozen insert takes its rows as execution parameters, not .values()")
    frozen = FrozenInsert.__new__(FrozenInsert)
    frozen.__dict__ = stmt.__dict__.copy()
    _FROZEN.append(frozen)
    return frozen
