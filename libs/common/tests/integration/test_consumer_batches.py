"""Batch handlers of the consumer runner against real PostgreSQL and the real broker: runs of consecutive events in
one call and one span, a duplicate skipped by the inbox, poison to the DLQ, and a failing batch retried event by
event so that exactly the good events take effect, once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from change_svc.config import Settings
from change_svc.main import SPEC
from greenzone_common import kafka
from greenzone_common.consumer import ConsumerRunner, Received, Subscription
from greenzone_common.contracts import ChangeCreated
from greenzone_common.db import make_sessionmaker
from greenzone_common.dlq import list_dead_letters
from greenzone_common.envelope import encode
from greenzone_common.migrations import migrate
from greenzone_common.plumbing import plumbing_tables
from greenzone_common.testing.helpers import eventually

pytestmark = pytest.mark.integration

TRACEPARENT = "00-{:032x}-{:016x}-01"


@pytest.fixture
async def settings(settings_for) -> Settings:  # type: ignore[no-untyped-def]
    s: Settings = settings_for(Settings, consumer_max_retries=1, consumer_retry_backoff=0.01)
    await migrate(s, SPEC.migrations, SPEC.schema)
    conn = await asyncpg.connect(s.asyncpg_dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS change.batch_effects (ce_id text PRIMARY KEY, number text)")
    finally:
        await conn.close()
    return s


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    p = kafka.producer(settings)
    await p.start()
    yield p
    await p.stop()


def created(n: int) -> ChangeCreated:
    return ChangeCreated(
        change_id=str(uuid.uuid4()),
        number=f"CHG-{n:06d}",
        title=f"change {n}",
        type="normal",
        service="api",
        environment="production",
        requested_by="alice",
        risk={"score": 5, "level": "low", "factors": []},
        created_at=datetime.now(UTC),
    )


async def send(producer: AIOKafkaProducer, topic: str, ce_id: str, data: ChangeCreated | bytes, trace: int) -> None:
    value: Any = data if isinstance(data, bytes) else data.model_dump(mode="json")
    key, body, headers = encode(
        id=ce_id,
        source="/greenzone/tests",
        type=ChangeCreated.event_type,
        subject="k",  # one key: one partition, so the order below is the order consumed
        time=datetime.now(UTC),
        data=value,
        trace={"traceparent": TRACEPARENT.format(trace, trace)},
    )
    await producer.send_and_wait(topic, value=body, key=key, headers=headers)


async def effects(dsn: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch("SELECT ce_id, number FROM change.batch_effects ORDER BY number")]
    finally:
        await conn.close()


async def test_batch_handler_gets_runs_of_new_events_and_a_failing_batch_is_retried_event_by_event(
    settings: Settings, producer: AIOKafkaProducer, span_exporter: Any
) -> None:
    topic = f"greenzone.change.t{uuid.uuid4().hex[:8]}"
    await kafka.ensure_topics(settings, kafka.with_dlqs([topic]))
    ids = [str(uuid.uuid4()) for _ in range(6)]
    for n, ce_id in enumerate(ids):
        await send(producer, topic, ce_id, created(n), trace=n + 1)
    await send(producer, topic, ids[1], created(1), trace=99)  # a redelivery: the inbox skips it
    await send(producer, topic, str(uuid.uuid4()), b"{not json", trace=100)  # poison: the DLQ at once
    boom = str(uuid.uuid4())
    await send(producer, topic, boom, created(666), trace=101)  # the handler fails on it every time

    calls: list[list[str]] = []

    async def record(session: AsyncSession, events: Sequence[Received]) -> None:
        calls.append([event.id for event, _ in events])
        for event, data in events:
            assert isinstance(data, ChangeCreated)
            await session.execute(
                text("INSERT INTO change.batch_effects (ce_id, number) VALUES (:id, :number)"),
                {"id": event.id, "number": data.number},
            )
            if data.number == "CHG-000666":
                raise RuntimeError("cannot project this one")

    engine = create_async_engine(settings.sqlalchemy_url)
    runner = ConsumerRunner(
        settings,
        make_sessionmaker(engine),
        plumbing_tables(SPEC.metadata).inbox,
        producer,
        Subscription(
            group=f"batch-test.{uuid.uuid4().hex[:6]}",
            topics=[topic],
            batch_handlers={ChangeCreated.event_type: record},
        ),
    )
    task = asyncio.create_task(runner.run())
    try:
        expected = [(ce_id, f"CHG-{n:06d}") for n, ce_id in enumerate(ids)]
        await eventually(lambda: _equal(effects(settings.asyncpg_dsn), expected), timeout=60)
        await eventually(lambda: _true(runner.stats.dead_lettered == 2), timeout=30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()

    # the effects of the failed batch were rolled back; each event then applied alone, the failing one never
    assert await effects(settings.asyncpg_dsn) == expected
    assert runner.stats.applied == 6 and runner.stats.dead_lettered == 2 and runner.stats.duplicates >= 1
    assert any(len(call) > 1 for call in calls), "consecutive events reach the handler together"
    for call in calls:  # in partition order, and never the redelivery next to the original
        assert [i for i in call if i in ids] == [i for i in ids if i in call]
        assert len(call) == len(set(call))
    assert [boom] in calls, "the failing batch was retried event by event"
    dead = await list_dead_letters(settings, topic)
    assert {d.error_type for d in dead} == {"Poison", "RuntimeError"}
    assert next(d for d in dead if d.error_type == "Poison").error.startswith("event data is not valid JSON")

    # one span per call: it continues the first event's trace and links the others'
    spans = [
        s
        for s in span_exporter.get_finished_spans()
        if s.name == f"{topic} process" and s.attributes.get("messaging.batch.message_count", 0) > 1
    ]
    assert spans
    span = spans[0]
    count = span.attributes["messaging.batch.message_count"]
    assert span.parent is not None and span.parent.is_remote
    assert 1 <= span.context.trace_id <= 101, "the trace of one of the events (their trace ids are 1 to 101)"
    assert len(span.links) == count - 1
    assert {link.context.trace_id for link in span.links}.isdisjoint({span.context.trace_id})


async def _equal(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _true(value: bool) -> bool:
    return value
