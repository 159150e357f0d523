"""The periodic platform heartbeat: how a service's event plumbing is doing, on ``greenzone.platform``.

Every ``GREENZONE_HEARTBEAT_INTERVAL`` seconds a service publishes ``dev.greenzone.platform.heartbeat.v1`` with its
outbox backlog, the age of its oldest unpublished outbox row, what its consumers sent to dead-letter topics and
their lag. It is telemetry, not a state change, so it goes straight to the producer rather than through the
outbox: a stuck relay must not silence the report of a stuck relay.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from greenzone_common import envelope, kafka, relay
from greenzone_common.consumer import ConsumerRunner
from greenzone_common.contracts.base import PLATFORM_TOPIC, dlq_topic
from greenzone_common.contracts.platform import PlatformHeartbeatSent
from greenzone_common.settings import CommonSettings

log = structlog.get_logger(__name__)


def instance_name(settings: CommonSettings) -> str:
    return settings.kafka_client_id or f"{socket.gethostname()}-{os.getpid()}"


async def snapshot(
    service: str, schema: str, engine: AsyncEngine, consumers: Sequence[ConsumerRunner], instance: str
) -> PlatformHeartbeatSent:
    backlog, oldest_age = await relay.outbox_backlog(engine, schema)
    dlq: dict[str, int] = {}
    lag: dict[str, int] = {}
    for runner in consumers:
        for topic in runner.sub.topics:
            dlq[dlq_topic(topic)] = dlq.get(dlq_topic(topic), 0) + runner.stats.dead_lettered
        lag[runner.group] = sum(runner.stats.lag.values())
    return PlatformHeartbeatSent(
        service=service,
        instance=instance,
        outbox_backlog=backlog,
        oldest_unpublished_age_seconds=oldest_age,
        dlq_counts=dlq,
        consumer_lag=lag,
        at=datetime.now(UTC),
    )


async def publish(producer: AIOKafkaProducer, source: str, beat: PlatformHeartbeatSent) -> None:
    key, value, headers = envelope.encode(
        id=str(uuid.uuid4()),
        source=source,
        type=beat.event_type,
        subject=beat.key(),
        time=beat.at,
        data=beat.model_dump(mode="json"),
    )
    await producer.send_and_wait(PLATFORM_TOPIC, value=value, key=key, headers=headers)


async def run(
    settings: CommonSettings,
    service: str,
    schema: str,
    engine: AsyncEngine,
    producer: AIOKafkaProducer,
    consumers: Sequence[ConsumerRunner],
) -> None:
    """Publish a heartbeat every ``settings.heartbeat_interval`` seconds until cancelled; never crashes the app."""
    instance = instance_name(settings)
    topic_ready = False
    while True:
        await asyncio.sleep(settings.heartbeat_interval)
        try:
            if not topic_ready:
                await kafka.ensure_topics(settings, [PLATFORM_TOPIC])
                topic_ready = True
            beat = await snapshot(service, schema, engine, consumers, instance)
            await publish(producer, f"/greenzone/{service}", beat)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a missed beat shows up as staleness; the next one may succeed
            log.warning("heartbeat.failed", service=service, error=repr(exc))
