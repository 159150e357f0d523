"""The CloudEvents envelope in the Kafka protocol binding, binary content mode.

Headers ``ce_*`` carry the attributes, ``content-type`` the data's media type, W3C ``traceparent``/``tracestate``
the trace; the key is the aggregate id; the value is the event data as JSON. Both directions read and write the
few ``ce_*`` headers directly, checking what the ``cloudevents`` SDK checks: building the SDK's ``CloudEvent`` and
calling its ``to_binary`` cost about 20 µs per event, ``from_binary`` as much (most of the relay's encoding and the
consumer's decoding time). The SDK stays the reference: the unit tests compare both directions with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

JSON = "application/json"
TRACE_HEADERS = ("traceparent", "tracestate")
_JSON_HEADER = ("content-type", JSON.encode())
_SPECVERSION_HEADER = ("ce_specversion", b"1.0")

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
    """Key (the subject), value and headers of one event in binary mode, as the SDK's ``to_binary`` writes them;
    raises ``ValueError`` for an attribute the SDK would refuse (an empty id, source, type or subject, a naive time)."""
    for name, attribute in (("id", id), ("source", source), ("type", type), ("subject", subject)):
        if not attribute or not isinstance(attribute, str):
            raise ValueError(f"CloudEvent attribute {name!r} must be a non-empty string")
    if time.tzinfo is None:
        raise ValueError("CloudEvent attribute 'time' must carry a time zone")
    key = subject.encode()
    headers = [
        _SPECVERSION_HEADER,
        ("ce_id", id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", type.encode()),
        ("ce_subject", key),
        ("ce_time", _rfc3339(time).encode()),
        _JSON_HEADER,
    ]
    if trace:
        headers += [(name, trace[name].encode()) for name in TRACE_HEADERS if trace.get(name)]
    value = data if isinstance(data, bytes) else json.dumps(data, default=_json_default).encode()
    return key, value, headers


def _rfc3339(time: datetime) -> str:
    stamp = time.isoformat()
    return stamp[:-6] + "Z" if stamp.endswith("+00:00") else stamp


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return _rfc3339(value)
    raise TypeError(f"{value!r} is not JSON serialisable")


@dataclass(frozen=True)
class ReceivedEvent:
    """A CloudEvent read from Kafka, with where it came from. ``value`` is the data as received (JSON bytes);
    ``data`` parses it on first use."""

    id: str
    type: str
    source: str
    subject: str | None
    time: datetime | None
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: KafkaHeaders = field(repr=False)
    value: bytes = field(default=b"", repr=False)

    @property
    def trace(self) -> dict[str, str]:
        return {n: v.decode() for n, v in self.headers if n in TRACE_HEADERS}

    @cached_property
    def data(self) -> dict[str, Any]:
        """The data as a JSON object; raises :class:`MalformedEvent` when it is not one."""
        try:
            data = json.loads(self.value) if self.value else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedEvent(f"event data is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedEvent("event data must be a JSON object")
        return data


REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type")


def decode(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: KafkaHeaders,
    parse_data: bool = True,
) -> ReceivedEvent:
    """Parse a binary-mode message; raises :class:`MalformedEvent` naming what is wrong. With ``parse_data=False``
    the value is not parsed here (a consumer validating it against its contract in one step does that); reading
    ``data`` parses and checks it then."""
    raw_attributes = {name: raw for name, raw in headers if name.startswith("ce_")}
    missing = [h for h in REQUIRED_HEADERS if h not in raw_attributes]
    if missing:
        raise MalformedEvent(f"not a CloudEvent in binary mode: missing header(s) {', '.join(missing)}")
    if raw_attributes["ce_specversion"] != b"1.0":
        raise MalformedEvent(f"unsupported CloudEvents specversion {raw_attributes['ce_specversion']!r}")
    try:
        attributes = {name: raw.decode() for name, raw in raw_attributes.items()}
    except UnicodeDecodeError as exc:
        raise MalformedEvent(f"invalid CloudEvent attributes: {exc}") from exc
    for name in ("ce_id", "ce_source", "ce_type"):
        if not attributes[name]:
            raise MalformedEvent(f"invalid CloudEvent attributes: {name.removeprefix('ce_')} must not be empty")
    time: datetime | None = None
    if attributes.get("ce_time"):
        try:
            time = datetime.fromisoformat(attributes["ce_time"])
        except ValueError as exc:
            raise MalformedEvent(f"invalid CloudEvent attributes: time {attributes['ce_time']!r}: {exc}") from exc
    event = ReceivedEvent(
        id=attributes["ce_id"],
        type=attributes["ce_type"],
        source=attributes["ce_source"],
        subject=attributes.get("ce_subject"),
        time=time,
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        headers=list(headers),
        value=value or b"",
    )
    if parse_data:
        event.data  # noqa: B018 - parsed now, so that a bad value is reported here
    return event
