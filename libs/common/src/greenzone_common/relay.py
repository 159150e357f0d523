"""The outbox relay: publishes committed outbox rows to Kafka, in ``seq`` order, in batches.

Invariants:
- one active relay per service schema, held by a session-level advisory lock (several relays with SKIP LOCKED
  would break per-aggregate order); the others wait on standby and take over when the lock is freed;
- a row is marked published only after the broker acknowledged it; a crash in between republishes it (the
  consumers' inbox makes that harmless);
- woken after a commit that wrote outbox rows (``Waker``: directly when the relay runs in the committing process,
  else by a NOTIFY sent outside that transaction), with a polling fallback.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from greenzone_common import envelope, telemetry
from greenzone_common.kafka import ensure_topics, with_dlqs
from greenzone_common.plumbing import notify_channel
from greenzone_common.settings import CommonSettings

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)

STANDBY_RETRY_SECONDS = 2.0
RETENTION_EVERY_SECONDS = 600.0

#: The relay's session settings. Its reads want the few unpublished rows, which the partial index on ``seq`` holds
#: and whose entries for rows published since are skipped once an index scan has seen them dead. The statistics
#: cannot say so reliably: analysed during a burst, they count nearly every row unpublished, and a plan made from
#: them (or PostgreSQL's generic plan after five executions) read every published row below the batch, through the
#: primary key or the whole table, so that each batch cost more than the last and a relay behind a burst fell
#: further behind (seen as a bench run's outbox taking 43-48 s instead of 5-24 s to drain, and twice the database
#: CPU an event). Bitmap scans are ruled out too: they never mark dead index entries, which then pile up.
RELAY_PLANNING = {
    "plan_cache_mode": "force_custom_plan",
    "enable_seqscan": "off",
    "enable_bitmapscan": "off",
    "max_parallel_workers_per_gather": "0",
}


def planned_as_relay(*, local: bool) -> str:
    """One statement that applies ``RELAY_PLANNING``: to the rest of the current transaction (``local``: a pooled
    connection) or of the session. A statement, not startup parameters: PgBouncer refuses or drops those it does not
    know."""
    scope = "true" if local else "false"
    return "SELECT " + ", ".join(f"set_config('{k}', '{v}', {scope})" for k, v in RELAY_PLANNING.items())


def relay_lock_key(schema: str) -> str:
    return f"greenzone.outbox.relay.{schema}"


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    active: bool = False


class Relay:
    def __init__(self, settings: CommonSettings, schema: str, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.schema = schema
        self.producer = producer
        self.stats = RelayStats()
        self._wakeup = asyncio.Event()
        # None: not yet run (the monotonic clock may start near 0, in a fresh machine or time namespace)
        self._last_retention: float | None = None
        columns = (
            "seq, id::text AS id, topic, key, type, source, subject, time, data::text AS data, "
            "headers->>'traceparent' AS traceparent, headers->>'tracestate' AS tracestate"
        )
        outbox = f'"{schema}".outbox'
        self._select = f"SELECT {columns} FROM {outbox} WHERE published_at IS NULL ORDER BY seq LIMIT $1"
        # the batch after one in flight (up to seq $1), and how many unpublished rows are at or below $1: more than
        # the batch in flight means a row committed late below it, to be published first (see ``publish``)
        self._select_after = (
            f"SELECT {columns}, (SELECT count(*) FROM {outbox} WHERE published_at IS NULL AND seq <= $1) AS behind "
            f"FROM {outbox} WHERE published_at IS NULL AND seq > $1 ORDER BY seq LIMIT $2"
        )
        self._mark = f'UPDATE "{schema}".outbox SET published_at = now() WHERE seq = ANY($1::bigint[])'

    async def connect(self) -> asyncpg.Connection:
        """The relay's session (it holds the advisory lock), planned for a queue table (``RELAY_PLANNING``)."""
        conn = await asyncpg.connect(self.settings.asyncpg_dsn)
        await conn.execute(planned_as_relay(local=False))
        return conn

    def wake(self, *_: Any) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        """Run until cancelled: standby until this process holds the lock, then pump."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self.connect()
                if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", relay_lock_key(self.schema)):
                    await conn.close()
                    conn = None
                    await asyncio.sleep(STANDBY_RETRY_SECONDS)
                    continue
                self.stats.active = True
                log.info("relay.active", schema=self.schema)
                await conn.add_listener(notify_channel(self.schema), self.wake)
                await self._pump(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError) as exc:
                log.warning("relay.error", schema=self.schema, error=str(exc))
                await asyncio.sleep(1.0)
            finally:
                self.stats.active = False
                if conn is not None:
                    # closing the session frees the advisory lock for a standby relay
                    conn.terminate()

    async def _pump(self, conn: asyncpg.Connection) -> None:
        while True:
            self._wakeup.clear()
            await self.publish(conn)
            await self._retention(conn)
            try:
                await asyncio.wait_for(self._wakeup.wait(), self.settings.relay_poll_interval)
            except TimeoutError:
                pass

    async def publish(self, conn: asyncpg.Connection) -> int:
        """Publish every committed row not yet published, in ``seq`` order, batch after batch; how many.

        While a full batch waits for its acknowledgements, the next one is read and sent (Kafka keeps their order),
        then the first is marked: reading, encoding and sending overlap the broker's round trip. The next batch
        starts after the last row in flight, so it is only sent when no row has committed late below it (counted
        in the same snapshot); otherwise the batch in flight is finished first and the next read starts from the
        lowest unpublished row, as without overlap. A row of the same aggregate as a late one commits after it
        (use cases lock the aggregate), so it cannot overtake it. A failure leaves every batch in flight unmarked,
        to be published again."""
        size = self.settings.relay_batch_size
        total = 0
        in_flight = await self._send_batch(list(await conn.fetch(self._select, size)))
        while in_flight is not None:
            batch = in_flight[0]
            next_in_flight = None
            try:
                if len(batch) >= size:  # more may be waiting: read and send it while this batch is acknowledged
                    following = list(await conn.fetch(self._select_after, batch[-1]["seq"], size))
                    if following and following[0]["behind"] == len(batch):  # nothing committed late below
                        next_in_flight = await self._send_batch(following)
                await self._settle(conn, *in_flight)
            except BaseException:
                for unsettled in (in_flight, next_in_flight):  # left unmarked, to be published again
                    if unsettled is not None:
                        _abandon(*unsettled[1:])
                raise
            total += len(batch)
            in_flight = next_in_flight
            if in_flight is None and len(batch) >= size:  # a late row below, or more since: from the lowest again
                in_flight = await self._send_batch(list(await conn.fetch(self._select, size)))
        return total

    async def _send_batch(
        self, rows: list[asyncpg.Record]
    ) -> tuple[list[asyncpg.Record], asyncio.Future[Any], Any] | None:
        """Hand ``rows`` to the producer, in order, before anything else is sent; their acknowledgements to come."""
        if not rows:
            return None
        span = tracer.start_span("outbox.relay", attributes={"messaging.batch.message_count": len(rows)})
        try:
            acks = asyncio.gather(*await self._enqueue(rows))
        except BaseException:
            span.end()
            raise
        return rows, acks, span

    async def _settle(
        self, conn: asyncpg.Connection, rows: list[asyncpg.Record], acks: asyncio.Future[Any], span: Any
    ) -> None:
        """Wait for every acknowledgement of ``rows`` (one failure fails them all: all are published again), then
        mark them published."""
        try:
            try:
                await acks
            except KafkaError as exc:
                log.warning("relay.publish_failed", error=str(exc), rows=len(rows))
                # A broker restarted empty has no topics: create them, then let the loop retry.
                await ensure_topics(self.settings, with_dlqs({r["topic"] for r in rows}))
                raise
            await conn.execute(self._mark, [r["seq"] for r in rows])
        finally:
            span.end()
        self.stats.published += len(rows)
        self.stats.batches += 1
        telemetry.OUTBOX_PUBLISHED.labels(self.settings.service_name).inc(len(rows))

    async def _enqueue(self, rows: list[asyncpg.Record]) -> list[asyncio.Future[Any]]:
        futures = []
        for row in rows:
            key, value, headers = envelope.encode(
                id=row["id"],
                source=row["source"],
                type=row["type"],
                subject=row["subject"],
                time=row["time"],
                data=row["data"].encode(),
                trace={"traceparent": row["traceparent"], "tracestate": row["tracestate"]},
            )
            futures.append(await self.producer.send(row["topic"], value=value, key=key, headers=headers))
        return futures

    async def _retention(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if self._last_retention is not None and now - self._last_retention < RETENTION_EVERY_SECONDS:
            return
        self._last_retention = now
        async with conn.transaction():  # retention finds its rows through the created_at BRIN: a bitmap scan
            await conn.execute("SET LOCAL enable_bitmapscan = on")
            deleted = await conn.execute(expire_sql(self.schema), self.settings.outbox_retention)
        log.info("relay.retention", schema=self.schema, result=deleted)


def _abandon(acks: asyncio.Future[Any], span: Any) -> None:
    """A batch sent but not to be marked: end its span (unless settling it did), and take its outcome when it comes
    so that a failure is not reported as never retrieved."""
    if span.is_recording():
        span.end()
    acks.add_done_callback(lambda f: f.cancelled() or f.exception())


class Waker:
    """Wakes the service's relay after commits that wrote outbox rows (``Outbox.staged``).

    In the process whose relay is active this is an ``asyncio.Event``; in the others (uvicorn workers, replicas) a
    ``NOTIFY`` on the relay's channel, sent on a connection of its own after the commit, never inside the use case's
    transaction (see ``outbox``). Pokes coalesce: one NOTIFY in flight at a time, followed by at most one more for
    every poke that arrived meanwhile, so a busy process sends far fewer NOTIFYs than it commits transactions.
    """

    def __init__(self, settings: CommonSettings, schema: str, relay: Relay | None) -> None:
        self.settings = settings
        self.schema = schema
        self.relay = relay
        self._pending = asyncio.Event()
        self.notified = 0

    def poke(self) -> None:
        if self.relay is not None and self.relay.stats.active:
            self.relay.wake()
        else:
            self._pending.set()

    async def run(self) -> None:
        """Send the pending NOTIFYs until cancelled."""
        conn: asyncpg.Connection | None = None
        try:
            while True:
                await self._pending.wait()
                self._pending.clear()
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.settings.asyncpg_dsn)
                    await conn.execute("SELECT pg_notify($1, '')", notify_channel(self.schema))
                    self.notified += 1
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("relay.notify_failed", schema=self.schema, error=str(exc))  # the relay still polls
                    conn = None
                    await asyncio.sleep(1.0)
        finally:
            if conn is not None:
                conn.terminate()


def expire_sql(schema: str) -> str:
    """Retention: the rows published longer ago than ``$1`` (an interval). ``published_at >= created_at``, so the
    ``created_at`` condition removes nothing more; it lets the ``created_at`` index find them."""
    return (
        f'DELETE FROM "{schema}".outbox WHERE created_at < now() - $1::interval AND published_at < now() - $1::interval'
    )


def replay_sql(schema: str) -> str:
    """Replay: every retained row created since ``$1``, to be published again."""
    return f'UPDATE "{schema}".outbox SET published_at = NULL WHERE created_at >= $1'


async def replay(dsn: str, schema: str, since: datetime) -> int:
    """Mark every retained event created since ``since`` for publication again; returns how many.

    The service's relay republishes them in their original order; consumers dedupe by ``ce_id``.
    """
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            result = await conn.execute(replay_sql(schema), since)
            await conn.execute("SELECT pg_notify($1, '')", notify_channel(schema))
        return int(result.split()[-1])
    finally:
        await conn.close()


def backlog_sql(schema: str) -> str:
    """The unpublished rows and the age in seconds of the oldest one. Planned as the relay plans (the outbox keeps
    every published row for ``outbox_retention``: from statistics taken during a burst it was a scan of all of them)."""
    return (
        f"SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age "
        f'FROM "{schema}".outbox WHERE published_at IS NULL'
    )


async def backlog(conn: asyncpg.Connection, schema: str) -> tuple[int, float | None]:
    """(unpublished rows, age in seconds of the oldest one)."""
    async with conn.transaction():
        await conn.execute(planned_as_relay(local=True))
        row = await conn.fetchrow(backlog_sql(schema))
    assert row is not None
    return int(row["n"]), (float(row["age"]) if row["age"] is not None else None)


async def outbox_backlog(engine: AsyncEngine, schema: str) -> tuple[int, float | None]:
    """``backlog`` on a pooled connection of ``engine`` (heartbeats, ``/metrics``)."""
    async with engine.connect() as conn:  # a transaction, rolled back on the way out: the settings end with it
        await conn.execute(text(planned_as_relay(local=True)))
        row = (await conn.execute(text(backlog_sql(schema)))).one()
    return int(row.n), (float(row.age) if row.age is not None else None)
