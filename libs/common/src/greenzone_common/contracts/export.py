"""The event catalogue as JSON Schema (one file per type) and as an AsyncAPI 3.0 document.

Both are generated from the registered models, never written by hand, and the output is deterministic: the
same catalogue always gives byte-identical files, so they can be committed and diffed.

``python -m greenzone_common.contracts.export DIR`` writes ``DIR/asyncapi.yaml`` and
``DIR/schemas/<type>.json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from greenzone_common.contracts.base import (
    CDEVENTS_TOPIC,
    CHANGE_TOPIC,
    PIPELINE_TOPIC,
    PLATFORM_TOPIC,
    RELEASE_TOPIC,
    REPORT_TOPIC,
    EventData,
    EventRegistry,
    dlq_topic,
)
from greenzone_common.contracts.base import registry as default_registry

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
DEFAULT_KAFKA_HOST = "localhost:9092"

SERVICES = ("change-svc", "release-svc", "pipeline-svc", "report-svc")

#: Who publishes on each topic. Every service sends its own heartbeat; CDEvents for outside tools come from
#: pipeline-svc. Dead-letter topics are written by whichever consumer gave up on a message.
PRODUCERS: dict[str, tuple[str, ...]] = {
    CHANGE_TOPIC: ("change-svc",),
    RELEASE_TOPIC: ("release-svc",),
    PIPELINE_TOPIC: ("pipeline-svc",),
    REPORT_TOPIC: ("report-svc",),
    PLATFORM_TOPIC: SERVICES,
    CDEVENTS_TOPIC: ("change-svc", "pipeline-svc"),  # ticket.* for change requests; deployments, incidents
}

# Names in components.schemas and components.messages besides the event payloads (which use the class name).
HEADERS_SCHEMA = "CloudEventsKafkaHeaders"
CDEVENT_SCHEMA = "CDEvent"
DEAD_LETTER_HEADERS_SCHEMA = "DeadLetterHeaders"
DEAD_LETTER_VALUE_SCHEMA = "DeadLetterValue"
CDEVENT_MESSAGE = "CDEvent"
DEAD_LETTER_MESSAGE = "DeadLetter"

_SCHEMA_BODY = ("type", "properties", "required", "additionalProperties")


def event_source(service: str) -> str:
    """The CloudEvents ``source`` of the events a service publishes."""
    return f"/greenzone/{service}"


# --- JSON Schema ---


def json_schema(model: type[EventData]) -> dict[str, Any]:
    """The standalone JSON Schema (2020-12) of one event type's data, nested models under ``$defs``."""
    generated = model.model_json_schema(mode="validation")
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": model.event_type,
        "title": model.__name__,
        "description": model.description,
    }
    # The body in a reading order: what an instance looks like first, nested models ($defs) after.
    for k in _SCHEMA_BODY:
        if k in generated:
            schema[k] = generated[k]
    schema.update((k, v) for k, v in generated.items() if k not in schema)
    schema["x-greenzone-topic"] = model.topic
    schema["x-greenzone-key"] = model.key_field
    return schema


def json_schemas(registry: EventRegistry = default_registry) -> dict[str, dict[str, Any]]:
    """Every registered type's JSON Schema, by type string, in type-string order."""
    return {model.event_type: json_schema(model) for model in registry}


# --- AsyncAPI ---


def _ref(*path: str) -> dict[str, str]:
    # Keys here never hold "/" or "~", so they need no JSON-pointer escaping.
    return {"$ref": "#/" + "/".join(path)}


def _payload_schemas(models: Sequence[type[EventData]]) -> tuple[dict[str, str], dict[str, Any]]:
    """Each model's name in ``components.schemas``, and those schemas with their nested models beside them."""
    modes: list[tuple[type[EventData], JsonSchemaMode]] = [(m, "validation") for m in models]
    refs, top = models_json_schema(modes, ref_template="#/components/schemas/{model}")
    prefix = "#/components/schemas/"
    names = {model.event_type: refs[(model, "validation")]["$ref"].removeprefix(prefix) for model in models}
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    for model in models:
        name = names[model.event_type]
        schemas[name] = {**schemas[name], "x-greenzone-type": model.event_type}
    return names, schemas


def _headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "CloudEvents 1.0, Kafka protocol binding, binary content mode: the attributes travel as ce_* "
            "headers and the value is the event data as JSON."
        ),
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_subject",
            "content-type",
        ],
        "properties": {
            "ce_specversion": {"type": "string", "const": "1.0"},
            "ce_id": {
                "type": "string",
                "format": "uuid",
                "description": "Unique per event and stable across retries: consumers dedupe on it.",
            },
            "ce_source": {"type": "string", "format": "uri-reference", "description": "/greenzone/<service>"},
            "ce_type": {"type": "string", "description": "dev.greenzone.<aggregate>.<past-tense verb>.v<N>"},
            "ce_time": {"type": "string", "format": "date-time"},
            "ce_subject": {"type": "string", "description": "The aggregate id, the same as the message key."},
            "content-type": {"type": "string", "const": "application/json"},
            "traceparent": {
                "type": "string",
                "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "W3C Trace Context.",
            },
            "tracestate": {"type": "string", "description": "W3C Trace Context."},
        },
        "additionalProperties": True,
    }


def _message_headers(event_type: str, topic: str) -> dict[str, Any]:
    sources = [event_source(service) for service in PRODUCERS.get(topic, ())]
    specific: dict[str, Any] = {"ce_type": {"const": event_type}}
    if sources:
        specific["ce_source"] = {"enum": sources}
    return {"allOf": [_ref("components", "schemas", HEADERS_SCHEMA), {"type": "object", "properties": specific}]}


def _kafka_binding(key_description: str) -> dict[str, Any]:
    return {
        "kafka": {
            "key": {"type": "string", "description": key_description},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _event_message(model: type[EventData], schema_name: str) -> dict[str, Any]:
    return {
        "name": model.__name__,
        "title": model.event_type,
        "summary": model.description,
        "contentType": "application/json",
        "headers": _message_headers(model.event_type, model.topic),
        "payload": _ref("components", "schemas", schema_name),
        "bindings": _kafka_binding(f"The aggregate id: the data's {model.key_field!r} field."),
    }


def _extra_messages() -> dict[str, dict[str, Any]]:
    return {
        CDEVENT_MESSAGE: {
            "name": CDEVENT_MESSAGE,
            "title": "CDEvent",
            "summary": "A standard CDEvents v0.5 event, for tools outside Greenzone.",
            "contentType": "application/json",
            "headers": _ref("components", "schemas", HEADERS_SCHEMA),
            "payload": _ref("components", "schemas", CDEVENT_SCHEMA),
            "bindings": _kafka_binding("The subject id."),
        },
        DEAD_LETTER_MESSAGE: {
            "name": DEAD_LETTER_MESSAGE,
            "title": "Dead letter",
            "summary": "A message a consumer could not validate or process after bounded retries.",
            "contentType": "application/json",
            "headers": _ref("components", "schemas", DEAD_LETTER_HEADERS_SCHEMA),
            "payload": _ref("components", "schemas", DEAD_LETTER_VALUE_SCHEMA),
            "bindings": _kafka_binding("The original key."),
        },
    }


def _extra_schemas() -> dict[str, dict[str, Any]]:
    return {
        HEADERS_SCHEMA: _headers_schema(),
        CDEVENT_SCHEMA: {
            "type": "object",
            "description": "A CDEvents v0.5 event: context, subject and customData, as its spec defines.",
            "required": ["context", "subject"],
            "additionalProperties": True,
        },
        DEAD_LETTER_HEADERS_SCHEMA: {
            "type": "object",
            "description": "The original message's headers, unchanged, plus headers describing the error.",
            "additionalProperties": True,
        },
        DEAD_LETTER_VALUE_SCHEMA: {
            "description": "The original message's value, unchanged: it may not even be valid JSON.",
        },
    }


def asyncapi_document(
    registry: EventRegistry = default_registry, *, host: str = DEFAULT_KAFKA_HOST, version: str | None = None
) -> dict[str, Any]:
    """The catalogue as an AsyncAPI 3.0.0 document: one channel per topic and per dead-letter topic, one send
    operation per producing service and topic, and each event type as a message with its payload schema."""
    models = list(registry)
    schema_names, payloads = _payload_schemas(models)
    extra_schemas = _extra_schemas()
    extra_messages = _extra_messages()
    clashes = (extra_schemas.keys() & payloads.keys()) | (extra_messages.keys() & schema_names.keys())
    if clashes:
        raise ValueError(f"names used twice in components: {sorted(clashes)}")

    by_topic: dict[str, list[type[EventData]]] = {topic: [] for topic in registry.topics() | {CDEVENTS_TOPIC}}
    for model in models:
        by_topic[model.topic].append(model)

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in sorted(by_topic):
        if by_topic[topic]:
            message_ids = [m.event_type for m in by_topic[topic]]
            description = f"Greenzone events on {topic}, keyed by the aggregate id."
        else:  # greenzone.cdevents carries standard CDEvents, not Greenzone types
            message_ids = [CDEVENT_MESSAGE]
            description = "Standard CDEvents (v0.5) for tools outside Greenzone."
        channels[topic] = {
            "address": topic,
            "description": description,
            "messages": {mid: _ref("components", "messages", mid) for mid in message_ids},
        }
        dlq = dlq_topic(topic)
        channels[dlq] = {
            "address": dlq,
            "description": (
                f"Dead letters of {topic}: the original key and headers plus the error. "
                "An admin command can re-drive them."
            ),
            "messages": {DEAD_LETTER_MESSAGE: _ref("components", "messages", DEAD_LETTER_MESSAGE)},
        }
        for service in PRODUCERS.get(topic, ()):
            operations[f"{service}.send.{topic}"] = {
                "action": "send",
                "title": f"{service} publishes on {topic}",
                "channel": _ref("channels", topic),
                "messages": [_ref("channels", topic, "messages", mid) for mid in message_ids],
            }

    messages = {model.event_type: _event_message(model, schema_names[model.event_type]) for model in models}
    messages.update(extra_messages)
    schemas = {**payloads, **extra_schemas}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Greenzone events",
            "version": version or _contracts_version(),
            "description": (
                "Greenzone's events on Kafka: CloudEvents 1.0 in binary content mode, keyed by the aggregate "
                "id. Consumers must accept fields they do not know; a breaking change is a new type version."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": host,
                "protocol": "kafka",
                "description": "The Kafka cluster (or a Kafka-protocol broker such as Tansu in development).",
            }
        },
        "channels": channels,
        "operations": dict(sorted(operations.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": dict(sorted(messages.items())),
        },
    }


def _contracts_version() -> str:
    try:
        return package_version("greenzone-common")
    except PackageNotFoundError:
        return "0.0.0"


# --- files ---


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # no &anchors: a repeated value is written out again, which every reader understands


def asyncapi_yaml(registry: EventRegistry = default_registry, *, host: str = DEFAULT_KAFKA_HOST) -> str:
    return yaml.dump(
        asyncapi_document(registry, host=host), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110
    )


def write_contracts(
    out_dir: Path, registry: EventRegistry = default_registry, *, host: str = DEFAULT_KAFKA_HOST
) -> list[Path]:
    """Write ``asyncapi.yaml`` and ``schemas/<type>.json`` under ``out_dir``; return the paths written.

    Schema files of types no longer registered are removed, so the directory always mirrors the catalogue.
    """
    schema_dir = out_dir / "schemas"
    schema_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "asyncapi.yaml"]
    written[0].write_bytes(asyncapi_yaml(registry, host=host).encode())
    for event_type, schema in json_schemas(registry).items():
        path = schema_dir / f"{event_type}.json"
        path.write_bytes((json.dumps(schema, indent=2, ensure_ascii=False) + "\n").encode())
        written.append(path)
    for stale in sorted(set(schema_dir.glob("dev.greenzone.*.json")) - set(written)):
        stale.unlink()
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the event contracts: AsyncAPI and JSON Schema.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--host", default=DEFAULT_KAFKA_HOST, help="the Kafka server in the AsyncAPI document")
    args = parser.parse_args(argv)
    for path in write_contracts(args.out_dir, host=args.host):
        print(path)


if __name__ == "__main__":
    main()
