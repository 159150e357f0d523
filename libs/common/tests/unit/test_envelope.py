"""The CloudEvents Kafka binding (binary mode): what encode writes, decode reads back; anything else is malformed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from greenzone_common.envelope import JSON, MalformedEvent, ReceivedEvent, decode, encode

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


EVENT: dict[str, object] = {
    "id": "7d1f3c1e-0000-4000-8000-000000000001",
    "source": "/greenzone/change-svc",
    "type": "dev.greenzone.change.created.v1",
    "subject": "change-42",
    "time": WHEN,
    "data": {"change_id": "change-42", "title": "Raise API pool size"},
}


def encoded(**overrides: object) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return encode(**(EVENT | overrides))  # type: ignore[arg-type]


def received(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> ReceivedEvent:
    return decode(topic="greenzone.change", partition=3, offset=17, key=key, value=value, headers=headers)


def test_encode_puts_attributes_in_ce_headers_and_the_subject_in_the_key() -> None:
    key, value, headers = encoded()

    assert key == b"change-42"
    assert dict(headers) == {
        "ce_specversion": b"1.0",
        "ce_id": b"7d1f3c1e-0000-4000-8000-000000000001",
        "ce_source": b"/greenzone/change-svc",
        "ce_type": b"dev.greenzone.change.created.v1",
        "ce_subject": b"change-42",
        "ce_time": b"2026-03-02T09:00:00Z",
        "content-type": JSON.encode(),
    }
    assert value.startswith(b"{")


def test_encode_then_decode_gives_back_the_event() -> None:
    key, value, headers = encoded()

    event = received(key, value, headers)

    assert event.id == "7d1f3c1e-0000-4000-8000-000000000001"
    assert event.type == "dev.greenzone.change.created.v1"
    assert event.source == "/greenzone/change-svc"
    assert event.subject == "change-42"
    assert event.time == WHEN
    assert event.data == {"change_id": "change-42", "title": "Raise API pool size"}
    assert (event.topic, event.partition, event.offset, event.key) == ("greenzone.change", 3, 17, b"change-42")


def test_data_given_as_json_bytes_is_sent_as_is() -> None:
    _, value, headers = encoded(data=b'{"already":"serialised"}')

    assert value == b'{"already":"serialised"}'
    assert received(b"k", value, headers).data == {"already": "serialised"}


def test_trace_context_travels_in_the_headers() -> None:
    key, value, headers = encoded(trace={"traceparent": TRACEPARENT, "tracestate": "vendor=1"})

    assert ("traceparent", TRACEPARENT.encode()) in headers
    assert ("tracestate", b"vendor=1") in headers
    assert received(key, value, headers).trace == {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}


def test_without_trace_context_no_trace_headers_are_written() -> None:
    key, value, headers = encoded(trace={"traceparent": ""})

    assert not any(name in ("traceparent", "tracestate") for name, _ in headers)
    assert received(key, value, headers).trace == {}


def test_empty_value_decodes_as_empty_data() -> None:
    key, _, headers = encoded()

    assert received(key, None, headers).data == {}


@pytest.mark.parametrize("missing", ["ce_specversion", "ce_id", "ce_source", "ce_type"])
def test_message_missing_a_required_ce_header_is_malformed(missing: str) -> None:
    key, value, headers = encoded()
    headers = [(name, val) for name, val in headers if name != missing]

    with pytest.raises(MalformedEvent, match=f"missing header.*{missing}"):
        received(key, value, headers)


def test_plain_kafka_message_without_ce_headers_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match="not a CloudEvent") as raised:
        received(b"k", b'{"hello": "world"}', [("content-type", b"application/json")])

    assert "ce_specversion, ce_id, ce_source, ce_type" in str(raised.value)


def test_specversion_0_3_is_malformed() -> None:
    key, value, headers = encoded()
    headers = [(name, b"0.3" if name == "ce_specversion" else val) for name, val in headers]

    with pytest.raises(MalformedEvent, match=r"specversion.*0\.3"):
        received(key, value, headers)


@pytest.mark.parametrize("value", [b"{not json", b"\xff\xfe", b'{"unterminated": '])
def test_value_that_is_not_json_is_malformed(value: bytes) -> None:
    key, _, headers = encoded()

    with pytest.raises(MalformedEvent, match="not valid JSON"):
        received(key, value, headers)


@pytest.mark.parametrize("value", [b"[1, 2]", b'"text"', b"42"])
def test_value_that_is_json_but_not_an_object_is_malformed(value: bytes) -> None:
    key, _, headers = encoded()

    with pytest.raises(MalformedEvent, match="JSON object"):
        received(key, value, headers)


def test_unparseable_time_attribute_is_malformed() -> None:
    key, value, headers = encoded()
    headers = [(name, b"yesterday" if name == "ce_time" else val) for name, val in headers]

    with pytest.raises(MalformedEvent, match="invalid CloudEvent attributes"):
        received(key, value, headers)


# The SDK is the reference for what binary mode looks like: encode must write what its to_binary writes.
SDK_CASES = [
    {},
    {"time": datetime(2026, 3, 2, 9, 0, 5, 123456, tzinfo=UTC)},
    {"time": datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=2)))},
    {"data": b'{"already":"serialised"}'},
    {"data": {"at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "n": [1, 2.5, None], "é": "ü"}},
    {"subject": "svc/ünïcode", "source": "https://ci.example/ü"},
]


@pytest.mark.parametrize("overrides", SDK_CASES)
def test_encode_writes_what_the_cloudevents_sdk_writes(overrides: dict[str, object]) -> None:
    from cloudevents.core.bindings import kafka as sdk
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent

    values = EVENT | overrides
    key, value, headers = encode(**values)  # type: ignore[arg-type]
    event = CloudEvent(
        attributes={"specversion": "1.0"}
        | {k: values[k] for k in ("id", "source", "type", "subject", "time")}
        | {"datacontenttype": JSON},
        data=values["data"],  # type: ignore[arg-type]
    )
    message = sdk.to_binary(event, JSONFormat(), key_mapper=lambda e: e.get_subject())

    assert key == str(message.key).encode()
    assert value == message.value
    assert headers == list(message.headers.items())


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"id": ""}, "id"),
        ({"source": ""}, "source"),
        ({"type": ""}, "type"),
        ({"subject": ""}, "subject"),
        ({"time": datetime(2026, 3, 2, 9, 0)}, "time"),
    ],
)
def test_encode_refuses_what_the_sdk_refuses(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        encoded(**overrides)
