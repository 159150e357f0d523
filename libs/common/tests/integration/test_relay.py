"""The outbox relay against real PostgreSQL and the real broker: one active relay per schema, commit order,
retention and replay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from change_svc.config import Settings
from change_svc.main import SPEC
from greenzone_common import kafka
from greenzone_common.contracts import CHANGE_TOPIC, ChangeCreated
from greenzone_common.envelope import decode
from greenzone_common.migrations import migrate
from greenzone_common.outbox import Outbox
from greenzone_common.plumbing import plumbing_tables
from greenzone_common.relay import (
    Relay,
    Waker,
    backlog,
    backlog_sql,
    outbox_backlog,
    planned_as_relay,
    replay,
)
from greenzone_common.testing.helpers import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(settings_for) -> Settings:  # type: ignore[no-untyped-def]
    s: Settings = settings_for(Settings, relay_batch_size=50, outbox_retention=timedelta(days=7))
    await migrate(s, SPEC.migrations, SPEC.schema)
    await kafka.ensure_topics(s, kafka.with_dlqs([CHANGE_TOPIC]))
    return s


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    p = kafka.producer(settings)
    await p.start()
    yield p
    await p.stop()


def created(change_id: str, n: int) -> ChangeCreated:
    return ChangeCreated(
        change_id=change_id,
        number=f"CHG-{n:06d}",
        title=f"change {n}",
        type="normal",
        service="api",
        environment="production",
        requested_by="alice",
        risk={"score": 5, "level": "low", "factors": []},
        created_at=datetime.now(UTC),
    )


async def write_events(settings: Settings, events: list[ChangeCreated]) -> None:
    engine = create_async_engine(settings.sqlalchemy_url)
    outbox = Outbox(plumbing_tables(SPEC.metadata).outbox, source=SPEC.source)
    async with engine.begin() as conn:
        await conn.execute(insert(outbox.table), [outbox.row(e) for e in events])
    await engine.dispose()


async def unpublished(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM change.outbox WHERE published_at IS NULL"))
    finally:
        await conn.close()


async def test_only_one_relay_is_active_and_a_standby_takes_over(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    first, second = Relay(settings, "change", producer), Relay(settings, "change", producer)
    t1 = asyncio.create_task(first.run())
    await eventually(lambda: _true(first.stats.active))
    t2 = asyncio.create_task(second.run())
    try:
        await asyncio.sleep(0.5)
        assert not second.stats.active, "a second relay must stay on standby while the first holds the lock"
        t1.cancel()
        await asyncio.gather(t1, return_exceptions=True)
        await eventually(lambda: _true(second.stats.active), timeout=10)
        await write_events(settings, [created(str(uuid.uuid4()), 1)])
        await eventually(lambda: _true(second.stats.published == 1))
    finally:
        t2.cancel()
        await asyncio.gather(t2, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value


async def test_relay_publishes_in_outbox_order_with_key_and_envelope(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    change_id = str(uuid.uuid4())
    await write_events(settings, [created(change_id, n) for n in range(120)])  # more than one batch of 50
    relay = Relay(settings, "change", producer)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _zero(settings))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert relay.stats.batches >= 3

    consumer = kafka.consumer(settings, CHANGE_TOPIC, group_id=f"order-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    numbers: list[str] = []
    try:
        while len(numbers) < 120:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    if r.key != change_id.encode():
                        continue
                    event = decode(
                        topic=r.topic,
                        partition=r.partition,
                        offset=r.offset,
                        key=r.key,
                        value=r.value,
                        headers=list(r.headers),
                    )
                    assert event.type == ChangeCreated.event_type
                    assert event.source == "/greenzone/change-svc"
                    assert event.subject == change_id
                    numbers.append(event.data["number"])
    finally:
        await consumer.stop()
    assert numbers == [f"CHG-{n:06d}" for n in range(120)], "one aggregate's events arrive in the order written"


async def published_numbers(settings: Settings, key: str, count: int) -> list[str]:
    """The ``number`` of the first ``count`` events on the change topic with ``key``, in the order received."""
    consumer = kafka.consumer(settings, CHANGE_TOPIC, group_id=f"order-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    numbers: list[str] = []
    try:
        while len(numbers) < count:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                numbers += [json.loads(r.value)["number"] for r in records if r.key == key.encode()]
    finally:
        await consumer.stop()
    return numbers


async def test_a_row_committed_late_below_the_batch_in_flight_is_not_overtaken(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    """While a batch waits for its acks the relay reads the next one from above it. A row that commits meanwhile
    with a lower seq (its transaction took seq early) must still precede what its aggregate committed after it."""
    late, other = str(uuid.uuid4()), str(uuid.uuid4())
    engine = create_async_engine(settings.sqlalchemy_url)
    outbox = Outbox(plumbing_tables(SPEC.metadata).outbox, source=SPEC.source)
    slow = await engine.connect()
    transaction = await slow.begin()
    await slow.execute(insert(outbox.table), [outbox.row(created(late, 1))])  # the lowest seq, not yet committed
    await write_events(settings, [created(other, n) for n in range(60)])  # a full batch of 50 and 10 more

    class LateCommitDuringTheFirstBatch(Relay):
        sent = 0

        async def _send_batch(self, rows: list[asyncpg.Record]) -> Any:
            in_flight = await super()._send_batch(rows)
            self.sent += 1
            if self.sent == 1:  # the first batch is in flight: the slow transaction commits, then its aggregate
                await transaction.commit()  # moves on in a transaction of its own (a higher seq)
                await write_events(settings, [created(late, 2)])
            return in_flight

    relay = LateCommitDuringTheFirstBatch(settings, "change", producer)
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        while await relay.publish(conn):
            pass
    finally:
        await conn.close()
        await slow.close()
        await engine.dispose()

    assert await unpublished(settings.asyncpg_dsn) == 0
    assert await published_numbers(settings, late, 2) == ["CHG-000001", "CHG-000002"]
    assert await published_numbers(settings, other, 60) == [f"CHG-{n:06d}" for n in range(60)]


async def _zero(settings: Settings) -> bool:
    return await unpublished(settings.asyncpg_dsn) == 0


async def test_replay_since_marks_only_newer_events_for_republication(settings: Settings) -> None:
    await write_events(settings, [created(str(uuid.uuid4()), n) for n in range(3)])
    relay = Relay(settings, "change", producer)
    conn = await relay.connect()  # planned as the relay plans (RELAY_PLANNING)
    try:
        await conn.execute(
            "UPDATE change.outbox SET published_at = now(), created_at = now() - interval '2 days' WHERE seq = "
            "(SELECT min(seq) FROM change.outbox)"
        )
        await conn.execute("UPDATE change.outbox SET published_at = now()")
    finally:
        await conn.close()
    count = await replay(settings.asyncpg_dsn, "change", datetime.now(UTC) - timedelta(days=1))
    assert count == 2
    assert await unpublished(settings.asyncpg_dsn) == 2


async def test_retention_deletes_only_published_rows_older_than_the_setting(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    await write_events(settings, [created(str(uuid.uuid4()), n) for n in range(3)])
    relay = Relay(settings, "change", producer)
    conn = await relay.connect()  # planned as the relay plans (RELAY_PLANNING)
    try:
        await conn.execute(
            # as it happens: published at or after it was created
            "UPDATE change.outbox SET created_at = now() - interval '8 days', published_at = now() - interval '8 days' "
            "WHERE seq = (SELECT min(seq) FROM change.outbox)"
        )
        await conn.execute(
            "UPDATE change.outbox SET created_at = now() - interval '9 days', published_at = now() - interval '1 day' "
            "WHERE seq = (SELECT max(seq) FROM change.outbox)"
        )
        await relay._retention(conn)
        left = await conn.fetch("SELECT published_at IS NULL AS pending FROM change.outbox ORDER BY seq")
    finally:
        await conn.close()
    assert [r["pending"] for r in left] == [True, False], "the 8-day-old published row is gone, the rest kept"


# --- waking the relay ---------------------------------------------------------------------------------------------

SLOW_POLL = 60.0  # longer than any wait below: a publication within it was woken, not polled


class Abandoned(Exception):
    pass


async def stage_in_a_session(settings: Settings, outbox: Outbox, n: int, *, commit: bool = True) -> None:
    engine = create_async_engine(settings.sqlalchemy_url)
    try:
        async with AsyncSession(engine) as session:
            with contextlib.suppress(Abandoned):
                async with session.begin():
                    await outbox.add(session, *(created(str(uuid.uuid4()), i) for i in range(n)))
                    if not commit:
                        raise Abandoned
    finally:
        await engine.dispose()


async def test_the_outbox_has_no_notify_trigger(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        triggers = await conn.fetch("SELECT tgname FROM pg_trigger WHERE tgrelid = 'change.outbox'::regclass")
    finally:
        await conn.close()
    assert triggers == [], "a NOTIFY inside the use case's transaction serialises every commit"


async def test_a_commit_in_the_relays_process_wakes_it_directly(settings: Settings, producer: AIOKafkaProducer) -> None:
    slow = settings.model_copy(update={"relay_poll_interval": SLOW_POLL})
    relay = Relay(slow, "change", producer)
    waker = Waker(slow, "change", relay)
    outbox = Outbox(plumbing_tables(SPEC.metadata).outbox, source=SPEC.source, waker=waker)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _true(relay.stats.active))
        await asyncio.sleep(0.3)  # the relay's first empty batch is behind it: it waits for a wake-up now
        await stage_in_a_session(slow, outbox, 3)
        await eventually(lambda: _true(relay.stats.published == 3), timeout=5)
        assert waker.notified == 0, "no NOTIFY is needed when the relay runs here"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_commit_elsewhere_wakes_the_relay_with_one_notify_after_it(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    slow = settings.model_copy(update={"relay_poll_interval": SLOW_POLL})
    relay = Relay(slow, "change", producer)  # the other process's relay
    waker = Waker(slow, "change", None)  # this process runs no relay
    outbox = Outbox(plumbing_tables(SPEC.metadata).outbox, source=SPEC.source, waker=waker)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(waker.run())]
    try:
        await eventually(lambda: _true(relay.stats.active))
        await asyncio.sleep(0.3)
        await stage_in_a_session(slow, outbox, 2, commit=False)  # rolled back: nothing to wake anyone for
        await asyncio.sleep(0.3)
        assert waker.notified == 0
        await stage_in_a_session(slow, outbox, 2)
        await eventually(lambda: _true(relay.stats.published == 2), timeout=5)
        assert waker.notified == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_relays_reads_skip_published_rows_even_with_statistics_from_a_burst(settings: Settings) -> None:
    """After a burst the outbox's statistics may say nearly every row is unpublished (analysed while the relay was
    behind). Planned from them, or generically after a few executions, the relay's reads scanned every published row
    below the batch (the primary key filtered by ``published_at``, or the whole table) and each batch cost more than
    the last. On the relay's own connection they read the unpublished rows' partial index, whatever the statistics."""
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        await conn.execute(
            "INSERT INTO change.outbox (id, topic, key, type, source, subject, time, data) "
            "SELECT gen_random_uuid(), 't', 'k', 'x', 's', 'k', now(), '{}' FROM generate_series(1, 30000)"
        )
        await conn.execute("ANALYZE change.outbox")  # the burst: every row unpublished
        await conn.execute("UPDATE change.outbox SET published_at = now() WHERE seq <= 29000")
    finally:
        await conn.close()
    relay = Relay(settings, "change", producer=None)  # type: ignore[arg-type]  # only its reads are planned here
    statements = [(relay._select, (50,)), (relay._select_after, (29_050, 50))]

    conn = await relay.connect()
    try:
        partial = await conn.fetchval(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'change' AND tablename = 'outbox' "
            "AND indexdef LIKE '%WHERE (published_at IS NULL)%'"
        )
        for n, (sql, args) in enumerate(statements):
            await conn.execute(f"PREPARE read{n} AS {sql}")
            arguments = ", ".join(map(str, args))
            for _ in range(8):  # past the five executions after which PostgreSQL may switch to a generic plan
                plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE) EXECUTE read{n}({arguments})"))
                assert "Seq Scan" not in plan, plan
                assert partial in plan, plan
                removed = [int(line.split(":")[1]) for line in plan.splitlines() if "Rows Removed by Filter" in line]
                assert all(r < 1000 for r in removed), plan
        assert await backlog(conn, "change") == (1000, pytest.approx(0, abs=60))
    finally:
        await conn.close()

    engine = create_async_engine(settings.sqlalchemy_url)  # heartbeats and /metrics count it on a pooled connection
    try:
        async with engine.connect() as pooled:
            await pooled.execute(text(planned_as_relay(local=True)))
            plan = "\n".join(r[0] for r in await pooled.execute(text(f"EXPLAIN (ANALYZE) {backlog_sql('change')}")))
        assert "Seq Scan" not in plan and partial in plan, plan
        assert (await outbox_backlog(engine, "change"))[0] == 1000
        async with engine.connect() as pooled:  # the settings ended with that transaction
            assert await pooled.scalar(text("SHOW enable_seqscan")) == "on"
    finally:
        await engine.dispose()
