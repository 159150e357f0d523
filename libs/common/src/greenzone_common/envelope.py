"""The CloudEvents envelope in the Kafka protocol binding, binary content mode (via the ``cloudevents`` SDK).

Headers ``ce_*`` carry the attributes, ``content-type`` the data's media type, W3C ``traceparent``/``tracestate``
the trace; the key is the aggregate id; the value is the event data as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

JSON = "application/json"
TRACE_HEADERS = ("traceparent", "tracestate")
_FORMAT = JSONFormat()

KafkaHeaders = list[tuple[str, bytes]]


class MalformedEvent(ValueError):
    """A Kafka message that is not a valid CloudEvent (or whose data is not valid JSON)."""


@dataclass(frozen=True)
class OutgoingMessage:
    topic: str
    key: bytes
    value: bytes
    headers: KafkaHeaders


def encode(
    *,
    id: str,
    source: str,
    type: str,
    subject: str,
    time: datetime,
    data: bytes | dict[str, Any],
    trace: dict[str, str] | None = None,
) -> tuple[bytes, bytes, KafkaHeaders]:
    """Key, value and headers of one event in binary mode."""
    event = CloudEvent(
        attributes={
            "specversion": "1.0",
            "id": id,
            "source": source,
            "type": type,
            "subject": subject,
            "time": time,
            "datacontenttype": JSON,
        },
        data=data,
    )
    message = ce_kafka.to_binary(event, _FORMAT, key_mapper=lambda e: e.get_subject())
    headers = [(name, value) for name, value in message.headers.items()]
    for name in TRACE_HEADERS:
        if trace and trace.get(name):
            headers.append((name, trace[name].encode()))
    key = message.key.encode() if isinstance(message.key, str) else (message.key or b"")
    return key, message.value, headers


@dataclass(frozen=True)
class ReceivedEvent:
    """A CloudEvent read from Kafka, with where it came from."""

    id: str
    type: str
    source: str
    subject: str | None
    time: datetime | None
    data: dict[str, Any]
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: KafkaHeaders = field(repr=False)

    @property
    def trace(self) -> dict[str, str]:
        return {n: v.decode() for n, v in self.headers if n in TRACE_HEADERS}


def decode(
    *, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, headers: KafkaHeaders
) -> ReceivedEvent:
    """Parse a binary-mode message; raises :class:`MalformedEvent` naming what is wrong."""
    header_map = {name: val for name, val in headers}
    missing = [h for h in ("ce_specversion", "ce_id", "ce_source", "ce_type") if h not in header_map]
    if missing:
        raise MalformedEvent(f"not a CloudEvent in binary mode: missing header(s) {', '.join(missing)}")
    if header_map["ce_specversion"] != b"1.0":
        raise MalformedEvent(f"unsupported CloudEvents specversion {header_map['ce_specversion']!r}")
    try:
        raw = value or b""
        data = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"event data is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedEvent("event data must be a JSON object")
    ce_headers = {n: v for n, v in header_map.items() if n.startswith("ce_") or n == "content-type"}
    try:
        event = ce_kafka.from_binary(ce_kafka.KafkaMessage(headers=ce_headers, key=None, value=b""), _FORMAT)
    except Exception as exc:  # the SDK raises several types for bad attributes
        raise MalformedEvent(f"invalid CloudEvent attributes: {exc}") from exc
    return ReceivedEvent(
        id=event.get_id(),
        type=event.get_type(),
        source=event.get_source(),
        subject=event.get_subject(),
        time=event.get_time(),
        data=data,
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        headers=list(headers),
    )
