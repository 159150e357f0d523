"""Hand-written statements on a hot path: on the session's asyncpg connection they belong to its transaction; on a
pooled connection each commits by itself and the connection goes back to the pool."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from greenzone_common.db import pooled_driver, session_driver

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://"), pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (n int PRIMARY KEY)"))
    yield engine
    await engine.dispose()


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM notes"))).scalar_one())


async def test_a_driver_statement_rolls_back_with_the_session(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        driver = await session_driver(session)  # before the session ran anything itself
        await driver.execute("INSERT INTO notes VALUES (1)")
        await session.execute(text("INSERT INTO notes VALUES (2)"))
        await session.rollback()
    assert await count(engine) == 0

    async with AsyncSession(engine) as session:
        driver = await session_driver(session)
        await driver.execute("INSERT INTO notes VALUES (3)")
        await session.commit()
    assert await count(engine) == 1


async def test_a_pooled_driver_statement_commits_by_itself(engine: AsyncEngine) -> None:
    async with pooled_driver(engine) as driver:
        await driver.execute("INSERT INTO notes VALUES (4)")
    assert await count(engine) == 1
    with pytest.raises(Exception, match="duplicate key"):
        async with pooled_driver(engine) as driver:
            await driver.execute("INSERT INTO notes VALUES (4)")
    async with pooled_driver(engine) as driver:  # the pool (of one) still serves
        assert await driver.fetchval("SELECT count(*) FROM notes") == 1
