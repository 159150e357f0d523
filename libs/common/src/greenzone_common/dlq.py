"""Dead-letter topics: list what is in them, and re-drive messages to the topic they came from.

Re-driving keeps the original ``ce_id``: a message that failed was never recorded in the consumer's inbox, so it is
processed once it succeeds; re-driving twice is harmless for the same reason. The re-drive consumer group commits
its offsets, so each dead letter is re-driven once by default.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from greenzone_common.consumer import DLQ_HEADERS
from greenzone_common.contracts.base import DLQ_SUFFIX
from greenzone_common.kafka import consumer as make_consumer
from greenzone_common.kafka import producer as make_producer
from greenzone_common.settings import CommonSettings

REDRIVE_GROUP = "greenzone.dlq-redrive"


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: str | None
    ce_id: str | None
    ce_type: str | None
    error: str
    error_type: str
    group: str
    original_topic: str
    failed_at: str
    redriven: bool

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _h(headers: dict[str, bytes], name: str) -> str:
    value = headers.get(name)
    return value.decode(errors="replace") if value is not None else ""


async def _read_all(settings: CommonSettings, topic: str, group: str | None) -> tuple[list[Any], Any]:
    """Every retained message of ``topic`` (reading from the group's position when a group is given)."""
    consumer = make_consumer(settings, group_id=group, auto_offset_reset="earliest")
    await consumer.start()
    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions:
        await consumer.stop()
        return [], None
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    if group is None:
        await consumer.seek_to_beginning(*tps)
    end = await consumer.end_offsets(tps)
    records: list[Any] = []
    # Read until caught up with the end offsets and a poll comes back empty: some brokers (Tansu) report end
    # offsets short of the real end, so the offsets alone are not trusted.
    while True:
        batch = await consumer.getmany(*tps, timeout_ms=500)
        for recs in batch.values():
            records.extend(recs)
        if not batch and not [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            break
    return records, consumer


async def list_dead_letters(settings: CommonSettings, topic: str) -> list[DeadLetter]:
    dlq = topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX
    records, consumer = await _read_all(settings, dlq, None)
    if consumer is None:
        return []
    try:
        committed: dict[int, int] = {}
        probe = make_consumer(settings, group_id=REDRIVE_GROUP)
        await probe.start()
        try:
            for p in consumer.partitions_for_topic(dlq) or set():
                committed[p] = await probe.committed(TopicPartition(dlq, p)) or 0
        finally:
            await probe.stop()
    finally:
        await consumer.stop()
    out = []
    for r in records:
        h = {n: v for n, v in r.headers}
        out.append(
            DeadLetter(
                topic=dlq,
                partition=r.partition,
                offset=r.offset,
                key=r.key.decode(errors="replace") if r.key else None,
                ce_id=_h(h, "ce_id") or None,
                ce_type=_h(h, "ce_type") or None,
                error=_h(h, "dlq_error"),
                error_type=_h(h, "dlq_error_type"),
                group=_h(h, "dlq_group"),
                original_topic=_h(h, "dlq_topic") or dlq.removesuffix(DLQ_SUFFIX),
                failed_at=_h(h, "dlq_failed_at"),
                redriven=r.offset < committed.get(r.partition, 0),
            )
        )
    return sorted(out, key=lambda d: (d.partition, d.offset))


async def redrive(settings: CommonSettings, topic: str) -> int:
    """Re-publish the not yet re-driven dead letters of ``topic`` to their original topic; returns how many."""
    dlq = topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX
    records, consumer = await _read_all(settings, dlq, REDRIVE_GROUP)
    if consumer is None:
        return 0
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for r in records:
            h = {n: v for n, v in r.headers}
            target = _h(h, "dlq_topic") or dlq.removesuffix(DLQ_SUFFIX)
            headers = [(n, v) for n, v in r.headers if n not in DLQ_HEADERS]
            futures.append(await producer.send(target, value=r.value, key=r.key, headers=headers))
        await asyncio.gather(*futures)
        # commit only after the broker acknowledged every re-published message
        positions: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            positions[tp] = max(positions.get(tp, 0), r.offset + 1)
        if positions:
            await consumer.commit(positions)
        return len(records)
    finally:
        await producer.stop()
        await consumer.stop()
