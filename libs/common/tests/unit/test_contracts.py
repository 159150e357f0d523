"""The event catalogue: every type of EVENTS.md is registered, tolerant, timezone-strict and exportable."""

from __future__ import annotations

import json
import re
import types
import typing
from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import AwareDatetime, BaseModel, ValidationError

from greenzone_common import contracts
from greenzone_common.contracts import export
from greenzone_common.contracts.base import EventData

# The catalogue of EVENTS.md, plus the platform heartbeat and the release report.
EXPECTED_TYPES = [
    "dev.greenzone.change.created.v1",
    "dev.greenzone.change.submitted.v1",
    "dev.greenzone.change.approved.v1",
    "dev.greenzone.change.rejected.v1",
    "dev.greenzone.change.started.v1",
    "dev.greenzone.change.completed.v1",
    "dev.greenzone.change.cancelled.v1",
    "dev.greenzone.change.closed.v1",
    "dev.greenzone.change.reviewed.v1",
    "dev.greenzone.service.registered.v1",
    "dev.greenzone.environment.defined.v1",
    "dev.greenzone.window.defined.v1",
    "dev.greenzone.freeze.scheduled.v1",
    "dev.greenzone.freeze.lifted.v1",
    "dev.greenzone.release.planned.v1",
    "dev.greenzone.release.changed.v1",
    "dev.greenzone.release.deployment.requested.v1",
    "dev.greenzone.release.deployed.v1",
    "dev.greenzone.release.rolledback.v1",
    "dev.greenzone.release.cancelled.v1",
    "dev.greenzone.release.els.started.v1",
    "dev.greenzone.release.closed.v1",
    "dev.greenzone.gate.evaluated.v1",
    "dev.greenzone.pipeline.run.finished.v1",
    "dev.greenzone.pipeline.tests.reported.v1",
    "dev.greenzone.pipeline.scan.reported.v1",
    "dev.greenzone.pipeline.artifact.published.v1",
    "dev.greenzone.pipeline.commits.pushed.v1",
    "dev.greenzone.pipeline.change.merged.v1",
    "dev.greenzone.pipeline.deployment.observed.v1",
    "dev.greenzone.pipeline.rollback.observed.v1",
    "dev.greenzone.pipeline.incident.detected.v1",
    "dev.greenzone.pipeline.incident.resolved.v1",
    "dev.greenzone.platform.heartbeat.v1",
    "dev.greenzone.report.release.published.v1",
]

TYPE_PATTERN = re.compile(r"^dev\.greenzone\.[a-z.]+\.v[0-9]+$")
MODELS = list(contracts.registry)
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _sample_value(annotation: Any) -> Any:
    """A valid value for a required field of the given type (constraints here are all met by these)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin in (typing.Union, types.UnionType):
        return _sample_value(next(a for a in typing.get_args(annotation) if a is not type(None)))
    if origin is list:
        return [_sample_value(typing.get_args(annotation)[0])]
    if origin is dict:
        return {"k": _sample_value(typing.get_args(annotation)[1])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _sample(annotation)
    samples: dict[Any, Any] = {str: "x", int: 1, float: 0.5, bool: True, AwareDatetime: AT, time: time(9, 0)}
    return samples[annotation]


def _sample(model: type[BaseModel]) -> dict[str, Any]:
    """The smallest valid data of a model: its required fields only."""
    return {name: _sample_value(field.annotation) for name, field in model.model_fields.items() if field.is_required()}


def _change_created(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "change_id": "c-1",
        "number": "CHG-000042",
        "title": "Raise API pool size",
        "type": "normal",
        "service": "api",
        "environment": "production",
        "requested_by": "alice",
        "planned_start": "2026-03-02T09:00:00Z",
        "planned_end": "2026-03-02T10:00:00Z",
        "version": "1.4.2",
        "commits": ["3f2a9c1"],
        "risk": {
            "score": 35,
            "level": "medium",
            "factors": [{"code": "NO_TEST_EVIDENCE", "points": 15, "detail": "no tests for 1.4.2"}],
        },
        "release_id": None,
        "created_at": "2026-03-01T12:00:00Z",
    }
    data.update(changes)
    return data


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


# --- the catalogue ---


def test_every_catalogue_type_is_registered() -> None:
    missing = [t for t in EXPECTED_TYPES if not contracts.registry.knows(t)]
    assert missing == []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.event_type)
def test_type_string_names_aggregate_verb_and_version(model: type[EventData]) -> None:
    assert TYPE_PATTERN.match(model.event_type)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.event_type)
def test_model_has_its_key_field_a_topic_and_a_description(model: type[EventData]) -> None:
    assert model.key_field in model.model_fields
    assert model.model_fields[model.key_field].is_required()
    assert model.topic in export.PRODUCERS
    assert model.description and "\n" not in model.description


@pytest.mark.parametrize(
    ("event_type", "key_field"),
    [
        ("dev.greenzone.change.created.v1", "change_id"),
        ("dev.greenzone.release.deployed.v1", "release_id"),
        ("dev.greenzone.service.registered.v1", "name"),
        ("dev.greenzone.gate.evaluated.v1", "service"),
        ("dev.greenzone.pipeline.deployment.observed.v1", "service"),
        ("dev.greenzone.platform.heartbeat.v1", "service"),
        ("dev.greenzone.report.release.published.v1", "release_id"),
    ],
)
def test_key_field_follows_the_topic_table(event_type: str, key_field: str) -> None:
    assert contracts.registry.model(event_type).key_field == key_field


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.event_type)
def test_model_round_trips_through_json(model: type[EventData]) -> None:
    data = model.model_validate(_sample(model))
    again = contracts.registry.parse(model.event_type, data.model_dump_json().encode())
    assert again == data
    assert again.key() == str(getattr(data, model.key_field))


def test_change_created_round_trips_with_every_field() -> None:
    created = contracts.ChangeCreated.model_validate(_change_created())
    again = contracts.registry.parse("dev.greenzone.change.created.v1", created.model_dump_json())
    assert again == created
    assert created.key() == "c-1"
    assert created.risk.factors[0].code == "NO_TEST_EVIDENCE"
    assert created.planned_window is not None
    assert created.planned_window.end - created.planned_window.start == timedelta(hours=1)


def test_change_created_carries_what_consumers_need() -> None:
    needed = {
        "change_id",
        "number",
        "title",
        "type",
        "service",
        "environment",
        "requested_by",
        "planned_start",
    }
    needed |= {"planned_end", "version", "commits", "risk", "release_id", "created_at"}
    assert needed <= set(contracts.ChangeCreated.model_fields)


def test_unknown_fields_are_accepted_and_kept() -> None:
    data = _change_created(added_in_v1_1="hello")
    data["risk"] = {**data["risk"], "confidence": 0.9}
    created = contracts.registry.parse("dev.greenzone.change.created.v1", data)
    dumped = json.loads(created.model_dump_json())
    assert dumped["added_in_v1_1"] == "hello"
    assert dumped["risk"]["confidence"] == 0.9


def test_a_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        contracts.ChangeCreated.model_validate(_change_created(created_at="2026-03-01T12:00:00"))
    with pytest.raises(ValidationError):
        contracts.ChangeCreated.model_validate(_change_created(created_at=datetime(2026, 3, 1, 12)))


def test_an_aware_datetime_is_kept_as_the_same_instant_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    created = contracts.ChangeCreated.model_validate(_change_created(created_at=datetime(2026, 3, 1, 13, tzinfo=paris)))
    assert created.created_at == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert json.loads(created.model_dump_json())["created_at"] == "2026-03-01T12:00:00Z"


def test_values_outside_the_api_vocabulary_are_rejected() -> None:
    with pytest.raises(ValidationError):
        contracts.ChangeCreated.model_validate(_change_created(type="urgent"))
    with pytest.raises(ValidationError):
        contracts.ChangeCreated.model_validate(_change_created(change_id=""))


def test_events_are_immutable() -> None:
    created = contracts.ChangeCreated.model_validate(_change_created())
    with pytest.raises(ValidationError):
        created.title = "changed"  # type: ignore[misc]


# --- JSON Schema ---


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.event_type)
def test_json_schema_is_valid_and_accepts_the_model_output(model: type[EventData]) -> None:
    schema = export.json_schemas()[model.event_type]
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == model.event_type
    assert schema["title"] == model.__name__
    instance = json.loads(model.model_validate(_sample(model)).model_dump_json())
    Draft202012Validator(schema).validate(instance)


def test_json_schema_of_change_created_validates_nested_models() -> None:
    schema = export.json_schemas()["dev.greenzone.change.created.v1"]
    validator = Draft202012Validator(schema)
    validator.validate(_change_created())
    bad = _change_created(risk={"score": 35, "level": "extreme"})
    assert not validator.is_valid(bad)


# --- AsyncAPI ---


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return export.asyncapi_document(contracts.registry, host="kafka.example:9092")


def test_asyncapi_document_is_version_3(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "Greenzone events"
    assert document["info"]["version"]
    assert document["servers"]["kafka"] == {
        "host": "kafka.example:9092",
        "protocol": "kafka",
        "description": document["servers"]["kafka"]["description"],
    }


def test_every_topic_and_its_dead_letter_topic_has_a_channel(document: dict[str, Any]) -> None:
    addresses = {channel["address"] for channel in document["channels"].values()}
    for topic in contracts.registry.topics():
        assert topic in addresses
        assert contracts.dlq_topic(topic) in addresses


def test_every_event_type_is_a_message_on_its_topic(document: dict[str, Any]) -> None:
    for model in contracts.registry:
        (channel,) = [c for c in document["channels"].values() if c["address"] == model.topic]
        assert model.event_type in channel["messages"]


def test_every_message_references_an_existing_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for message in document["components"]["messages"].values():
        payload = message["payload"]["$ref"]
        assert payload.startswith("#/components/schemas/")
        assert payload.removeprefix("#/components/schemas/") in schemas
        assert message["bindings"]["kafka"]["key"]["type"] == "string"


def test_messages_describe_the_cloudevents_headers(document: dict[str, Any]) -> None:
    headers = document["components"]["schemas"][export.HEADERS_SCHEMA]["properties"]
    for name in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"):
        assert name in headers
    for name in ("content-type", "traceparent", "tracestate"):
        assert name in headers
    created = document["components"]["messages"]["dev.greenzone.change.created.v1"]
    specific = created["headers"]["allOf"][1]["properties"]
    assert specific["ce_type"] == {"const": "dev.greenzone.change.created.v1"}
    assert specific["ce_source"] == {"enum": ["/greenzone/change-svc"]}


def test_every_reference_in_the_document_resolves(document: dict[str, Any]) -> None:
    for ref in _refs(document):
        _resolve(document, ref)


def test_each_producer_sends_on_its_topics(document: dict[str, Any]) -> None:
    operations = document["operations"]
    assert all(op["action"] == "send" for op in operations.values())
    senders = {
        (name.split(".send.")[0], _resolve(document, op["channel"]["$ref"])["address"])
        for name, op in operations.items()
    }
    assert ("change-svc", "greenzone.change") in senders
    assert ("release-svc", "greenzone.release") in senders
    assert ("pipeline-svc", "greenzone.pipeline") in senders
    assert ("pipeline-svc", "greenzone.cdevents") in senders
    assert ("report-svc", "greenzone.report") in senders
    assert {s for s, topic in senders if topic == "greenzone.platform"} == set(export.SERVICES)


def test_component_schemas_are_valid_json_schema(document: dict[str, Any]) -> None:
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


# --- files ---


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_contracts_is_deterministic(tmp_path: Path) -> None:
    first = export.write_contracts(tmp_path / "a")
    export.write_contracts(tmp_path / "b")
    once = _tree(tmp_path / "a")
    export.write_contracts(tmp_path / "a")
    assert _tree(tmp_path / "a") == once == _tree(tmp_path / "b")
    assert first[0] == tmp_path / "a" / "asyncapi.yaml"
    assert [p.name for p in first[1:]] == [f"{m.event_type}.json" for m in contracts.registry]


def test_written_files_read_back_as_the_documents(tmp_path: Path) -> None:
    export.write_contracts(tmp_path)
    assert yaml.safe_load((tmp_path / "asyncapi.yaml").read_text()) == export.asyncapi_document()
    schema = json.loads((tmp_path / "schemas" / "dev.greenzone.gate.evaluated.v1.json").read_text())
    assert schema == export.json_schemas()["dev.greenzone.gate.evaluated.v1"]


def test_write_contracts_removes_schemas_of_types_no_longer_registered(tmp_path: Path) -> None:
    stale = tmp_path / "schemas" / "dev.greenzone.thing.removed.v1.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    export.write_contracts(tmp_path)
    assert not stale.exists()
