"""Frozen inserts: the PostgreSQL INSERT … ON CONFLICT that SQLAlchemy would compile on every execution, compiled
once and then served from the engine's cache — with exactly the behaviour of the statement it froze."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from greenzone_common.bulk import MAX_VARIANTS, BulkInsert, records
from greenzone_common.db import frozen_insert

metadata = MetaData(schema="frozen_test")
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("seen", Integer, nullable=False, server_default=text("1")),
)
_ins = pg_insert(items)
IGNORE = frozen_insert(_ins.on_conflict_do_nothing().returning(items.c.id))
COUNT = frozen_insert(
    _ins.on_conflict_do_update(index_elements=[items.c.id], set_={"seen": items.c.seen + 1, "name": _ins.excluded.name})
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA frozen_test"))
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_frozen_inserts_keep_their_on_conflict_clause(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        assert (await conn.execute(IGNORE, {"id": 1, "name": "a"})).scalars().all() == [1]
        assert (await conn.execute(IGNORE, {"id": 1, "name": "b"})).scalars().all() == []  # ignored
        new = (await conn.execute(IGNORE, [{"id": 2, "name": "c"}, {"id": 1, "name": "d"}])).scalars().all()
        assert new == [2]  # executemany with RETURNING: only the new row comes back
        await conn.execute(COUNT, {"id": 1, "name": "e"})
        await conn.execute(COUNT, {"id": 3, "name": "f"})
        rows = (await conn.execute(text("SELECT id, name, seen FROM frozen_test.items ORDER BY id"))).all()
    assert [tuple(r) for r in rows] == [(1, "e", 2), (2, "c", 1), (3, "f", 1)]


async def test_frozen_inserts_are_compiled_once(engine) -> None:  # type: ignore[no-untyped-def]
    cache: dict = {}  # type: ignore[type-arg]
    async with engine.connect() as conn:
        conn = await conn.execution_options(compiled_cache=cache)
        for i in range(10, 15):
            await conn.execute(IGNORE, {"id": i, "name": "x"})
        assert len(cache) == 1
        for i in range(10, 15):  # the statement it froze: not cacheable at all
            await conn.execute(pg_insert(items).on_conflict_do_nothing(), {"id": i, "name": "x"})
        assert len(cache) == 1
        await conn.rollback()


def test_a_frozen_insert_takes_no_literal_values() -> None:
    with pytest.raises(ValueError, match="execution parameters"):
        frozen_insert(pg_insert(items).values(id=1, name="x"))


async def test_records_read_returned_rows_by_name_and_position(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        insert = BulkInsert(items, ("id", "name"), "ON CONFLICT DO NOTHING")
        async with AsyncSession(bind=conn) as session:
            back = await insert.execute(session, [{"id": 20, "name": "p"}, {"id": 21, "name": "q"}])
            again = await insert.execute(session, [{"id": 21, "name": "r"}, {"id": 22, "name": "s"}])
        result = await conn.execute(text("SELECT id, name AS label FROM frozen_test.items WHERE id >= 20 ORDER BY id"))
        listed = records(result)
    assert [(r.id, r.name, r.seen) for r in back] == [(20, "p", 1), (21, "q", 1)]  # the server default came back
    assert [(r.id, r.name) for r in again] == [(22, "s")]  # only the new row
    assert [(r.id, r.label) for r in listed] == [(20, "p"), (21, "q"), (22, "s")]
    assert listed[0] == (20, "p") and type(listed[0]) is type(listed[1])  # one class per set of columns


async def test_columns_constant_in_a_batch_are_sent_once_and_land_in_every_row(engine) -> None:  # type: ignore[no-untyped-def]
    insert = BulkInsert(items, ("id", "name", "seen"), "ON CONFLICT DO NOTHING")
    same = [{"id": 30, "name": "batch", "seen": 7}, {"id": 31, "name": "batch", "seen": 7}]
    statement, params = insert.bound(same)
    assert params == {"c0": [30, 31], "c1": "batch", "c2": 7}  # one value each, not one a row
    assert "unnest(CAST(:c0 AS int8[])) AS u(c0)" in str(statement)
    mixed = [{"id": 32, "name": "x", "seen": 7}, {"id": 33, "name": "y", "seen": 7}]
    assert insert.bound(mixed)[1] == {"c0": [32, 33], "c1": ["x", "y"], "c2": 7}
    alone = [{"id": 34, "name": "z", "seen": 1}]
    assert insert.bound(alone)[1] == {"c0": [34], "c1": "z", "c2": 1}  # the first column stays an array
    assert insert.parameters(same) == {"c0": [30, 31], "c1": ["batch", "batch"], "c2": [7, 7]}  # for ``sql``
    async with engine.begin() as conn:
        async with AsyncSession(bind=conn) as session:
            back = await insert.execute(session, same)
            back += await insert.execute(session, mixed)
            back += await insert.execute(session, alone)
            back += await insert.execute(session, same)  # nothing new: ignored
        rows = (await conn.execute(text("SELECT id, name, seen FROM frozen_test.items WHERE id >= 30"))).all()
    expected = [(30, "batch", 7), (31, "batch", 7), (32, "x", 7), (33, "y", 7), (34, "z", 1)]
    assert [(r.id, r.name, r.seen) for r in back] == expected
    assert sorted(tuple(r) for r in rows) == expected


def test_constant_json_is_compared_as_the_text_sent() -> None:
    table = Table("docs", MetaData(), Column("id", Integer, primary_key=True), Column("body", JSONB))
    insert = BulkInsert(table, ("id", "body"))
    # equal as Python values, not as JSON: 1 and 1.0 are different numbers in jsonb
    apart = [{"id": 1, "body": {"n": 1}}, {"id": 2, "body": {"n": 1.0}}]
    assert insert.bound(apart)[1]["c1"] == ['{"n":1}', '{"n":1.0}']
    assert insert.bound([{"id": 1, "body": {"n": 1}}, {"id": 2, "body": {"n": 1}}])[1]["c1"] == '{"n":1}'


def test_past_its_variants_a_bulk_insert_sends_arrays() -> None:
    wide = Table("wide", MetaData(), *(Column(f"v{i}", Integer) for i in range(8)))
    insert = BulkInsert(wide, [f"v{i}" for i in range(8)])
    patterns = [[{f"v{i}": (r if (p >> i) & 1 else 0) for i in range(8)} for r in (1, 2)] for p in range(1, 256, 2)]
    statements = {str(insert.bound(rows)[0]) for rows in patterns}
    assert len(statements) == MAX_VARIANTS  # the all-arrays statement among them: the one past them
    statement, params = insert.bound(patterns[-1])
    assert statement is insert.statement and all(isinstance(v, list) for v in params.values())
