"""The consumer runner: idempotent handlers over Kafka with an inbox, retries and a dead-letter topic.

For each polled batch:
1. messages that are not valid CloudEvents, or whose data fails its contract, go to ``<topic>.dlq`` at once;
2. the rest are applied in one transaction: the inbox rows ``(group, ce_id)`` are inserted first and only the
   events whose row is new reach the handlers (a duplicate is skipped), in partition order. A handler takes one
   event (in a span of its own, continuing the event's trace) or, registered as a batch handler, each run of
   consecutive events it handles (one span per run, continuing the first event's trace and linking the others');
3. if that transaction fails, each event is retried on its own, with bounded retries and backoff, and an event
   that still fails goes to the DLQ with the error in its headers;
4. only then, after the database commit, the offsets are committed.
Effects are therefore exactly-once although delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import KafkaError
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from pydantic import ValidationError
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from greenzone_common import envelope, telemetry
from greenzone_common.contracts import registry
from greenzone_common.contracts.base import EventData, UnknownEventType, dlq_topic
from greenzone_common.kafka import consumer as make_consumer
from greenzone_common.kafka import ensure_topics, with_dlqs
from greenzone_common.settings import CommonSettings

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)

Handler = Callable[[AsyncSession, envelope.ReceivedEvent, EventData], Awaitable[None]]
Received = tuple[envelope.ReceivedEvent, EventData]
BatchHandler = Callable[[AsyncSession, Sequence[Received]], Awaitable[None]]
MAX_SPAN_LINKS = 128  # the SDK's default limit

DLQ_HEADERS = (
    "dlq_error",
    "dlq_error_type",
    "dlq_group",
    "dlq_topic",
    "dlq_partition",
    "dlq_offset",
    "dlq_failed_at",
)


@dataclass
class Subscription:
    """A consumer group: the topics it reads and a handler or a batch handler per event type (other types are
    skipped). A batch handler is called with consecutive events of the batch, in partition order, in the batch's
    transaction: it can write one statement per table for all of them. Per event, tracing alone costs more than a
    projection's work."""

    group: str
    topics: list[str]
    handlers: dict[str, Handler] = field(default_factory=dict)
    batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)

    def __post_init__(self) -> None:
        both = self.handlers.keys() & self.batch_handlers.keys()
        if both:
            raise ValueError(f"{self.group}: both a handler and a batch handler for {sorted(both)}")


@dataclass
class ConsumerStats:
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    ignored: int = 0
    lag: dict[str, int] = field(default_factory=dict)


@dataclass
class _Item:
    record: ConsumerRecord[bytes, bytes]
    event: envelope.ReceivedEvent
    data: EventData
    handler: Handler | None
    batch: BatchHandler | None = None


class Poison(Exception):
    """An event that cannot be processed whatever the retries (bad envelope or contract)."""


class ConsumerRunner:
    def __init__(
        self,
        settings: CommonSettings,
        sessions: async_sessionmaker[AsyncSession],
        inbox: Table,
        producer: AIOKafkaProducer,
        subscription: Subscription,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.inbox = inbox
        self.producer = producer
        self.sub = subscription
        self.group = subscription.group + settings.consumer_group_suffix
        table = f'"{inbox.schema}".{inbox.name}' if inbox.schema else inbox.name
        self._inbox_insert = text(
            f"INSERT INTO {table} (consumer_group, ce_id, ce_type) "
            "SELECT :group, u.id, u.type FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[])) AS u(id, type) "
            "ON CONFLICT DO NOTHING RETURNING ce_id"
        )
        self.stats = ConsumerStats()
        self.ready = asyncio.Event()  # set once the group has its partitions
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        """Consume until cancelled; reconnects after broker errors."""
        while True:
            try:
                await ensure_topics(self.settings, with_dlqs(self.sub.topics))
                self._consumer = make_consumer(self.settings, *self.sub.topics, group_id=self.group)
                await self._consumer.start()
                try:
                    await self._loop(self._consumer)
                finally:
                    await self._consumer.stop()
            except KafkaError as exc:
                log.warning("consumer.error", group=self.group, error=str(exc))
                await asyncio.sleep(1.0)

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=self.settings.consumer_batch_size)
            if consumer.assignment():
                self.ready.set()
            if not batches:
                continue
            records = [r for tp in sorted(batches, key=lambda t: (t.topic, t.partition)) for r in batches[tp]]
            await self.process(records)
            # after the database commit: the offsets of everything processed (applied, skipped or dead-lettered)
            await consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batches.items()})
            for tp in batches:
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    self.stats.lag[f"{tp.topic}:{tp.partition}"] = highwater - (batches[tp][-1].offset + 1)

    async def process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        items: list[_Item] = []
        seen: set[str] = set()
        for record in records:
            try:
                item = self._decode(record)
            except Poison as exc:
                await self._dead_letter(record, exc)
                continue
            if item is None:
                self.stats.ignored += 1
                continue
            if item.event.id in seen:  # a redelivery inside the same batch
                self.stats.duplicates += 1
                continue
            seen.add(item.event.id)
            items.append(item)
        if not items:
            return
        try:
            await self._apply(items)
        except Exception as exc:
            log.warning("consumer.batch_failed", group=self.group, size=len(items), error=repr(exc))
            for item in items:
                await self._apply_one_with_retries(item)

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> _Item | None:
        try:
            event = envelope.decode(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=list(record.headers),
                parse_data=False,
            )
        except envelope.MalformedEvent as exc:
            raise Poison(str(exc)) from exc
        handler = self.sub.handlers.get(event.type)
        batch = self.sub.batch_handlers.get(event.type) if handler is None else None
        if handler is None and batch is None:
            try:
                event.data  # noqa: B018 - not handled, but a value that is not a JSON object is still poison
            except envelope.MalformedEvent as exc:
                raise Poison(str(exc)) from exc
            return None
        try:
            # parsed and validated in one step, straight from the bytes
            data = registry.parse(event.type, event.value)
        except ValidationError:
            data = self._validate_slowly(event)  # names the problem as the two steps did, or (b"") succeeds
        except UnknownEventType as exc:
            raise Poison(f"{event.type} is not a known event type") from exc
        return _Item(record, event, data, handler, batch)

    def _validate_slowly(self, event: envelope.ReceivedEvent) -> EventData:
        try:
            value = event.data
        except envelope.MalformedEvent as exc:
            raise Poison(str(exc)) from exc
        try:
            return registry.parse(event.type, value)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
            raise Poison(f"{event.type} data does not match its contract: {problems}") from exc

    async def _apply(self, items: Sequence[_Item]) -> None:
        async with self.sessions() as session, session.begin():
            # one statement with array parameters: compiled once, whatever the batch size
            result = await session.execute(
                self._inbox_insert,
                {"group": self.group, "ids": [i.event.id for i in items], "types": [i.event.type for i in items]},
            )
            fresh = set(result.scalars())
            run: list[_Item] = []  # consecutive new events for the same batch handler
            for item in items:
                if item.event.id not in fresh:
                    self.stats.duplicates += 1
                    telemetry.CONSUMED.labels(
                        self.settings.service_name, self.group, item.event.topic, "duplicate"
                    ).inc()
                    continue
                if run and item.batch is not run[0].batch:
                    await self._handle_run(session, run)
                    run = []
                if item.batch is not None:
                    run.append(item)
                    continue
                assert item.handler is not None
                with tracer.start_as_current_span(
                    f"{item.event.topic} process",
                    context=propagate.extract(item.event.trace),
                    kind=SpanKind.CONSUMER,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.destination.name": item.event.topic,
                        "messaging.message.id": item.event.id,
                        "messaging.consumer.group.name": self.group,
                        "cloudevents.event_type": item.event.type,
                    },
                ):
                    await item.handler(session, item.event, item.data)
            if run:
                await self._handle_run(session, run)
        applied = len(fresh)
        self.stats.applied += applied
        if applied:
            telemetry.CONSUMED.labels(self.settings.service_name, self.group, items[0].event.topic, "applied").inc(
                applied
            )

    async def _handle_run(self, session: AsyncSession, run: Sequence[_Item]) -> None:
        first = run[0].event
        links = []
        for item in run[1:]:
            context = _remote_span_context(item.event)
            if context is not None:
                links.append(Link(context))
                if len(links) == MAX_SPAN_LINKS:
                    break
        types = {i.event.type for i in run}
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.destination.name": first.topic,
            "messaging.consumer.group.name": self.group,
            "messaging.batch.message_count": len(run),
        }
        if len(run) == 1:
            attributes["messaging.message.id"] = first.id
        if len(types) == 1:
            attributes["cloudevents.event_type"] = first.type
        with tracer.start_as_current_span(
            f"{first.topic} process",
            context=propagate.extract(first.trace),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        ):
            assert run[0].batch is not None
            await run[0].batch(session, [(i.event, i.data) for i in run])

    async def _apply_one_with_retries(self, item: _Item) -> None:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.settings.consumer_max_retries + 1),
                wait=wait_exponential(multiplier=self.settings.consumer_retry_backoff, max=5.0),
                reraise=True,
            ):
                with attempt:
                    await self._apply([item])
        except Exception as exc:
            await self._dead_letter(item.record, exc)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], exc: BaseException) -> None:
        """Publish the original message, with the error, to ``<topic>.dlq`` (acknowledged before moving on)."""
        error = str(exc) or repr(exc)
        headers = [(n, v) for n, v in record.headers if n not in DLQ_HEADERS]
        headers += [
            ("dlq_error", error[:4000].encode()),
            ("dlq_error_type", type(exc).__name__.encode()),
            ("dlq_group", self.group.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self.producer.send_and_wait(dlq_topic(record.topic), value=record.value, key=record.key, headers=headers)
        self.stats.dead_lettered += 1
        telemetry.DEAD_LETTERED.labels(self.settings.service_name, self.group, record.topic).inc()
        log.error(
            "consumer.dead_lettered",
            group=self.group,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=error,
            trace="".join(traceback.format_exception_only(type(exc), exc)).strip(),
        )


def _remote_span_context(event: envelope.ReceivedEvent) -> SpanContext | None:
    """The W3C ``traceparent`` of an event as a span context, for a link (cheaper than a propagator extract)."""
    for name, value in event.headers:
        if name == "traceparent":
            parts = value.split(b"-")
            if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
                return None
            try:
                context = SpanContext(
                    int(parts[1], 16), int(parts[2], 16), is_remote=True, trace_flags=TraceFlags(int(parts[3][:2], 16))
                )
            except ValueError:
                return None
            return context if context.is_valid else None
    return None
