"""CDEvents v0.4.x and v0.5.x: validation against the published JSON schemas, then mapping to facts.

The schemas (cdevents/spec v0.4.1 and v0.5.1, Apache-2.0) are vendored in ``cdevents_schemas/``. A schema is
chosen by the event's ``context.type``: the subject type versions differ between the two releases (e.g.
``pipelinerun.finished.0.2.0`` vs ``0.3.0``), so the type names the release. v0.4.x says ``context.version`` where
v0.5.x says ``context.specversion``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from pipeline_svc.facts.policy import normalise_environment, parse_purl, parse_time, repository_path
from pipeline_svc.sources import schema_check
from pipeline_svc.sources.facts import (
    ArtifactFact,
    ChangeOpenedFact,
    DeploymentFact,
    Fact,
    IncidentFact,
    MergeFact,
    RollbackFact,
    RunFact,
    ServiceRef,
    TestsFact,
)

SOURCE = "cdevents"
PREFIX = "dev.cdevents."
RELEASES = {"v0_4": "0.4", "v0_5": "0.5"}
#: CDEvents testsuiterun outcomes (v0.4 spells them pass/fail) → Greenzone's
TEST_OUTCOMES = {"pass": "success", "fail": "failure", "success": "success", "failure": "failure"}


class InvalidCDEvent(ValueError):
    """A CDEvent that does not match its schema; ``field`` is the dotted path of the failing field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Schemas:
    validators: dict[str, Draft202012Validator]  # by CDEvents type string
    release_of: dict[str, str]  # type string -> "0.4" | "0.5"
    #: by type string, the schema as plain predicates (``schema_check``): a yes is final, a no is explained by the
    #: validator; a type whose schema it cannot reproduce exactly is absent (always checked by the validator)
    fast: dict[str, schema_check.Check]


@cache
def schemas() -> Schemas:
    """Every vendored schema, compiled once; ``$ref``s to ``links/…`` resolve through an in-memory registry."""
    root = resources.files("pipeline_svc.sources") / "cdevents_schemas"
    validators: dict[str, Draft202012Validator] = {}
    release_of: dict[str, str] = {}
    fast: dict[str, schema_check.Check] = {}
    for folder, release in RELEASES.items():
        documents = []
        base = root / folder
        for entry in base.iterdir():
            if entry.name.endswith(".json"):
                documents.append(json.loads(entry.read_text()))
        links = [json.loads(e.read_text()) for e in (base / "links").iterdir() if e.name.endswith(".json")]
        registry: Registry = Registry().with_resources(
            (doc["$id"], Resource.from_contents(doc)) for doc in [*documents, *links]
        )
        compiler = schema_check.Compiler({doc["$id"]: doc for doc in [*documents, *links]})
        for doc in documents:
            type_name = doc["properties"]["context"]["properties"]["type"]["enum"][0]
            validators[type_name] = Draft202012Validator(doc, registry=registry)
            release_of[type_name] = release
            try:
                fast[type_name] = compiler.document(doc["$id"])
            except schema_check.Unsupported:
                pass
    return Schemas(validators=validators, release_of=release_of, fast=fast)


def known_types() -> set[str]:
    return set(schemas().validators)


def _path(error: ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        parts += missing[:1]
    elif error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in allowed)
        parts += extra[:1]
    return ".".join(parts)


def validate(event: Any) -> str:
    """Check ``event`` against its schema; returns its type. Raises :class:`InvalidCDEvent` naming the field."""
    if not isinstance(event, dict):
        raise InvalidCDEvent("", "a CDEvent must be a JSON object with context and subject")
    context = event.get("context")
    if not isinstance(context, dict):
        raise InvalidCDEvent("context", "is required and must be an object")
    type_name = context.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise InvalidCDEvent("context.type", "is required")
    compiled = schemas()
    fast = compiled.fast.get(type_name)
    if fast is not None and fast(event):
        return type_name
    validator = compiled.validators.get(type_name)
    if validator is None:
        raise InvalidCDEvent(
            "context.type",
            f"{type_name!r} is not a CDEvents v0.4.x or v0.5.x event type this service knows",
        )
    error = best_match(validator.iter_errors(event))
    if error is not None:
        raise InvalidCDEvent(_path(error), error.message)
    return type_name


def short_type(type_name: str) -> str:
    """``dev.cdevents.service.deployed.0.3.0`` → ``service.deployed``."""
    parts = type_name.removeprefix(PREFIX).split(".")
    return ".".join(parts[:2])


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def map_event(event: dict[str, Any], *, at: datetime | None = None) -> list[Fact]:
    """Facts from a *valid* CDEvent (call :func:`validate` first). ``at``: its ``context.timestamp``, when the caller
    has parsed it already."""
    context = _dict(event.get("context"))
    subject = _dict(event.get("subject"))
    content = _dict(subject.get("content"))
    custom = _dict(event.get("customData"))
    name = short_type(str(context.get("type")))
    at = at or parse_time(context.get("timestamp"))
    if at is None:
        return []
    event_id = f"{context.get('source')}/{context.get('id')}"
    subject_id = str(subject.get("id"))
    purl = parse_purl(_str(content.get("artifactId")))
    env = normalise_environment(_str(_dict(content.get("environment")).get("id")))

    if name in ("service.deployed", "service.upgraded", "service.rolledback"):
        ref = ServiceRef(artifact=purl.name if purl else None, fallback=subject_id)
        version = purl.version if purl else None
        commit = _str(custom.get("commit"))
        if name == "service.rolledback":
            return [RollbackFact(ref, env, at, SOURCE, event_id, version=version, commit=commit)]
        return [
            DeploymentFact(
                ref=ref,
                environment=env,
                outcome="success",
                at=at,
                source=SOURCE,
                source_id=event_id,
                version=version,
                commit=commit,
                change_id=_str(custom.get("change_id")),
            )
        ]
    if name in ("incident.detected", "incident.reported", "incident.resolved"):
        service_id = _str(_dict(content.get("service")).get("id"))
        ref = ServiceRef(explicit=service_id, artifact=purl.name if purl else None, fallback=subject_id)
        return [
            IncidentFact(
                ref=ref,
                action="resolved" if name == "incident.resolved" else "detected",
                incident_key=f"{subject.get('source') or context.get('source')}/{subject_id}",
                environment=env,
                at=at,
                source=SOURCE,
                title=_str(content.get("description")),
                severity=_str(custom.get("severity")),
                version=purl.version if purl else None,
                commit=_str(custom.get("commit")),
                url=_str(content.get("ticketURI")),
            )
        ]
    if name in ("pipelinerun.finished", "taskrun.finished"):
        pipeline = _str(content.get("pipelineName") or content.get("taskName")) or subject_id
        url = _str(content.get("uri") or content.get("url"))
        repository = _str(custom.get("repository"))
        return [
            RunFact(
                ref=ServiceRef(explicit=_str(custom.get("service")), repository=repository, fallback=pipeline),
                kind="pipeline" if name == "pipelinerun.finished" else "task",
                source=SOURCE,
                run_key=f"{subject.get('source') or context.get('source')}/{subject_id}",
                pipeline=pipeline,
                status="completed",
                outcome=_str(content.get("outcome")) or "success",
                finished_at=at,
                repository=repository,
                commit=_str(custom.get("commit")),
                version=_str(custom.get("version")),
                url=url,
            )
        ]
    if name == "build.finished":
        return [
            RunFact(
                ref=ServiceRef(artifact=purl.name if purl else None, fallback=subject_id),
                kind="build",
                source=SOURCE,
                run_key=f"{subject.get('source') or context.get('source')}/{subject_id}",
                pipeline=purl.name if purl else subject_id,
                status="completed",
                outcome="success",  # build.finished reports the artifact a build produced
                finished_at=at,
                version=purl.version if purl else None,
            )
        ]
    if name == "artifact.published":
        published = parse_purl(subject_id)
        if published is None or not published.version:
            return []
        return [
            ArtifactFact(
                ref=ServiceRef(artifact=published.name),
                name=published.name,
                version=published.version,
                published_at=at,
                source=SOURCE,
                source_id=event_id,
                digest=published.version if published.version.startswith("sha256:") else None,
                purl=subject_id,
            )
        ]
    if name == "change.merged":
        repo = _dict(content.get("repository"))
        repository = _str(repo.get("id")) or repository_path(_str(repo.get("source"))) or subject_id
        return [
            MergeFact(
                ref=ServiceRef(repository=repository),
                repository=repository,
                change_id=subject_id,
                merged_at=at,
                source=SOURCE,
                created_subject=subject_id,
            )
        ]
    if name == "change.created":
        return [ChangeOpenedFact(ref=ServiceRef(fallback=subject_id), subject_id=subject_id, at=at)]
    if name == "testsuiterun.finished":
        suite = _dict(content.get("testSuite"))
        outcome = TEST_OUTCOMES.get(str(content.get("outcome")), str(content.get("outcome") or "error"))
        suite_name = _str(suite.get("name")) or _str(suite.get("id"))
        return [
            TestsFact(
                ref=ServiceRef(explicit=_str(custom.get("service")), fallback=suite_name or subject_id),
                outcome=outcome if outcome in ("success", "failure", "cancel", "error") else "error",
                reported_at=at,
                source=SOURCE,
                source_id=event_id,
                version=_str(custom.get("version")),
                commit=_str(custom.get("commit")),
                suite=suite_name,
            )
        ]
    return []
