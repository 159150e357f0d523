"""aiokafka plumbing: producer and consumer factories from settings, explicit topic creation, a broker probe.

Tansu (the development broker) rejects idempotent and transactional producers, so both are settings, off by
default; correctness never depends on them (outbox + inbox give effectively-once effects).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from greenzone_common.contracts.base import dlq_topic
from greenzone_common.settings import CommonSettings


def connection_options(settings: CommonSettings) -> dict[str, Any]:
    """Bootstrap, TLS and SASL options shared by producers, consumers and the admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "SCRAM-SHA-512"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        )
    return options


def producer(settings: CommonSettings, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        **connection_options(settings),
        "client_id": settings.kafka_client_id or settings.service_name,
        "acks": "all",
        "enable_idempotence": settings.kafka_enable_idempotence,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 15_000,
    }
    if settings.kafka_transactional_id:
        options["transactional_id"] = settings.kafka_transactional_id
    options.update(overrides)
    return AIOKafkaProducer(**options)


def consumer(settings: CommonSettings, *topics: str, group_id: str | None, **overrides: Any) -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        **connection_options(settings),
        "client_id": settings.kafka_client_id or settings.service_name,
        "group_id": group_id,
        "enable_auto_commit": False,
        # let a fetch gather up to 1 MiB or 100 ms: larger batches, one transaction each, for little latency
        "fetch_min_bytes": 1024 * 1024,
        "fetch_max_wait_ms": 100,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": 300_000,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def with_dlqs(topics: Iterable[str]) -> list[str]:
    out: list[str] = []
    for t in topics:
        out += [t, dlq_topic(t)]
    return sorted(set(out))


async def ensure_topics(
    settings: CommonSettings, topics: Iterable[str], *, partitions: int = 3, replication: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created."""
    wanted = sorted(set(topics))
    if not settings.kafka_create_topics:
        return []
    admin = AIOKafkaAdminClient(**connection_options(settings), request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return []
        try:
            await admin.create_topics(
                [NewTopic(name=t, num_partitions=partitions, replication_factor=replication) for t in missing]
            )
        except TopicAlreadyExistsError:
            pass  # created concurrently by another service
        return missing
    finally:
        await admin.close()


async def broker_reachable(producer: AIOKafkaProducer, timeout: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(timeout):
            await producer.client.fetch_all_metadata()
        return True
    except (TimeoutError, KafkaError, OSError):
        return False
