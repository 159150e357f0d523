"""Evidence (JUnit, SARIF), incidents, reads with filters and pagination, the catalogue, and the standard CDEvents
emitted for what GitHub, GitLab and the API told us (validated against the CDEvents v0.5.1 schemas)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from greenzone_common import envelope, kafka
from greenzone_common.contracts import RELEASE_TOPIC
from greenzone_common.contracts.release import ServiceRegistered
from greenzone_common.testing.helpers import bearer, eventually
from pipeline_svc.config import Settings

from ..conformance import CDEVENTS, GITHUB, GITLAB
from .conftest import PIPELINE, VIEWER, count, github_headers, gitlab_headers

pytestmark = pytest.mark.integration

JUNIT = b"""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1"
skipped="1" tests="4"><testcase classname="t" name="a"/><testcase classname="t" name="b"><failure message="boom"/>
</testcase><testcase classname="t" name="c"><skipped/></testcase><testcase classname="t" name="d"/></testsuite>
</testsuites>"""
BOMB = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;">]><testsuite name="&lol2;"/>"""
SARIF = {
    "version": "2.1.0",
    "runs": [
        {
            "tool": {
                "driver": {"name": "Trivy", "rules": [{"id": "CVE-1", "properties": {"security-severity": "9.1"}}]}
            },
            "results": [{"ruleId": "CVE-1", "ruleIndex": 0}, {"ruleId": "x", "level": "warning"}],
        }
    ],
}


def v05_validator(type_name: str) -> Draft202012Validator:
    """The shared v0.5.1 schema of ``type_name`` (read from the conformance folder as it is)."""
    root = CDEVENTS / "v0.5.1" / "schemas"
    docs = [json.loads(p.read_text()) for p in [*root.glob("*.json"), *(root / "links").glob("*.json")]]
    registry: Registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)
    schema = next(
        d
        for d in docs
        if d.get("properties", {}).get("context", {}).get("properties", {}).get("type", {}).get("enum") == [type_name]
    )
    return Draft202012Validator(schema, registry=registry)


async def test_junit_evidence_is_recorded_and_read_back(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    response = await client.post(
        "/evidence/junit?service=api&version=1.4.2&commit=" + "a" * 40,
        content=JUNIT,
        headers={**PIPELINE, "content-type": "application/xml"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "tests" and body["outcome"] == "failure"
    assert body["counts"] == {"passed": 2, "failed": 1, "skipped": 1}
    listed = await client.get("/evidence?service=api&version=1.4.2", headers=VIEWER)
    assert listed.status_code == 200 and [e["id"] for e in listed.json()["items"]] == [body["id"]]
    assert (await client.get("/evidence?service=api&version=9.9.9", headers=VIEWER)).json()["items"] == []
    event = json.loads(await db.fetchval("SELECT data FROM pipeline.outbox WHERE type LIKE '%tests.reported%'"))
    assert event["counts"] == {"passed": 2, "failed": 1, "skipped": 0 + 1} and event["version"] == "1.4.2"


async def test_xml_bomb_is_400_and_stores_nothing(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    response = await client.post(
        "/evidence/junit?service=api", content=BOMB, headers={**PIPELINE, "content-type": "text/xml"}
    )
    assert response.status_code == 400
    assert await count(db, "raw_events") == 0 and await count(db, "evidence") == 0
    wrong = await client.post(
        "/evidence/junit?service=api", content=JUNIT, headers={**PIPELINE, "content-type": "text/plain"}
    )
    assert wrong.status_code == 415


async def test_sarif_findings_by_severity(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    response = await client.post(
        "/evidence/sarif?service=api&version=1.4.2",
        content=json.dumps(SARIF),
        headers={**PIPELINE, "content-type": "application/sarif+json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["findings"] == {"critical": 1, "high": 0, "medium": 1, "low": 0, "note": 0}
    assert response.json()["tool"] == "Trivy"
    bad = await client.post(
        "/evidence/sarif?service=api",
        content=json.dumps({"version": "1.0"}),
        headers={**PIPELINE, "content-type": "application/json"},
    )
    assert bad.status_code == 400 and await count(db, "evidence") == 1


async def test_viewer_cannot_write(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    xml = {**VIEWER, "content-type": "application/xml"}
    assert (await client.post("/evidence/junit?service=api", content=JUNIT, headers=xml)).status_code == 403
    sarif = {**VIEWER, "content-type": "application/json"}
    assert (
        await client.post("/evidence/sarif?service=api", content=json.dumps(SARIF), headers=sarif)
    ).status_code == 403
    incident = {"service": "api", "environment": "prod", "title": "down", "severity": "critical"}
    assert (await client.post("/incidents", json=incident, headers=VIEWER)).status_code == 403
    assert (await client.post("/incidents", json=incident)).status_code == 401
    created = await client.post("/incidents", json=incident, headers=PIPELINE)
    assert created.status_code == 201
    resolve = f"/incidents/{created.json()['id']}/resolve"
    assert (await client.post(resolve, json={}, headers=VIEWER)).status_code == 403
    assert (await client.get(f"/incidents/{created.json()['id']}", headers=VIEWER)).json()["state"] == "open"
    assert await count(db, "raw_events") == 0 and await count(db, "incidents") == 1


async def test_incident_reported_and_resolved_with_standard_cdevents(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    manager = bearer("rita", "release_manager")
    created = await client.post(
        "/incidents",
        json={
            "service": "api",
            "environment": "prod",
            "title": "Checkout errors",
            "severity": "critical",
            "detected_at": "2026-03-02T10:00:00Z",
            "version": "1.4.2",
        },
        headers=manager,
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    assert (incident["environment"], incident["state"], incident["reported_by"]) == ("production", "open", "rita")
    resolved = await client.post(
        f"/incidents/{incident['id']}/resolve", json={"resolved_at": "2026-03-02T11:30:00Z"}, headers=PIPELINE
    )
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    again = await client.post(f"/incidents/{incident['id']}/resolve", json={}, headers=PIPELINE)
    assert again.status_code == 409
    assert (await client.post("/incidents/nope/resolve", json={}, headers=PIPELINE)).status_code == 404
    listed = await client.get("/incidents?service=api&state=resolved", headers=VIEWER)
    assert [i["id"] for i in listed.json()["items"]] == [incident["id"]]
    assert (await client.get("/incidents?state=open", headers=VIEWER)).json()["items"] == []

    rows = await db.fetch("SELECT type, data FROM pipeline.outbox ORDER BY seq")
    types = [r["type"] for r in rows]
    assert types == [
        "dev.greenzone.pipeline.incident.detected.v1",
        "dev.cdevents.incident.detected.0.3.0",
        "dev.greenzone.pipeline.incident.resolved.v1",
        "dev.cdevents.incident.resolved.0.3.0",
    ]
    for row in rows:
        if row["type"].startswith("dev.cdevents."):
            data = json.loads(row["data"])
            errors = list(v05_validator(row["type"]).iter_errors(data))
            assert not errors, errors
            assert data["subject"]["content"]["service"] == {"id": "api"}


async def test_deployments_from_github_and_gitlab_are_retold_as_valid_cdevents(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    body = (GITHUB / "deployment_status/created.1.json").read_bytes()
    assert (
        await client.post("/webhooks/github", content=body, headers=github_headers("deployment_status", body))
    ).status_code == 202
    body = (GITLAB / "official-docs/deployment.json").read_bytes()
    assert (
        await client.post("/webhooks/gitlab", content=body, headers=gitlab_headers("Deployment Hook"))
    ).status_code == 202
    rows = await db.fetch("SELECT type, topic, data FROM pipeline.outbox WHERE topic = 'greenzone.cdevents'")
    assert len(rows) == 2
    for row in rows:
        data = json.loads(row["data"])
        assert row["type"] == "dev.cdevents.service.deployed.0.3.0"
        assert not list(v05_validator(row["type"]).iter_errors(data))
    # the rollback builder is checked against its schema as well
    from greenzone_common import cdevents

    rollback = cdevents.build(
        "service.rolledback",
        source="/greenzone/pipeline-svc",
        subject_id="x",
        content={"environment": {"id": "production"}, "artifactId": "pkg:generic/api@1.4.1"},
    )
    assert not list(v05_validator(cdevents.type_string("service.rolledback")).iter_errors(rollback))


async def test_reads_filter_and_paginate(client: httpx.AsyncClient) -> None:
    for i in range(3):
        event = json.loads((CDEVENTS / "v0.5.1/examples/service_deployed.json").read_text())
        event["context"]["id"] = f"dep-{i}"
        event["context"]["timestamp"] = f"2026-01-0{i + 1}T10:00:00Z"
        event["subject"]["content"]["environment"]["id"] = "prod" if i < 2 else "staging"
        response = await client.post(
            "/events",
            content=json.dumps(event),
            headers={
                **PIPELINE,
                "content-type": "application/json",
                "ce-specversion": "1.0",
                "ce-id": f"dep-{i}",
                "ce-source": "/cd",
                "ce-type": event["context"]["type"],
            },
        )
        assert response.status_code == 202, response.text
    first = await client.get("/deployments?environment=production&limit=1", headers=VIEWER)
    assert first.status_code == 200
    page = first.json()
    assert [d["at"] for d in page["items"]] == ["2026-01-02T10:00:00Z"] and page["next_cursor"]
    second = (
        await client.get(f"/deployments?environment=production&limit=1&cursor={page['next_cursor']}", headers=VIEWER)
    ).json()
    assert [d["at"] for d in second["items"]] == ["2026-01-01T10:00:00Z"] and second["next_cursor"] is None
    everything = (await client.get("/deployments?service=myapp", headers=VIEWER)).json()["items"]
    assert len(everything) == 3
    assert (await client.get("/deployments?cursor=%%%", headers=VIEWER)).status_code == 400
    assert (await client.get("/deployments")).status_code == 401
    runs = await client.get("/runs?limit=500", headers=VIEWER)
    assert runs.status_code == 200 and runs.json()["items"] == []
    assert (await client.get("/runs?limit=501", headers=VIEWER)).status_code == 422


async def test_catalogue_maps_a_repository_to_its_service(
    client: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    registered = ServiceRegistered(
        name="greeter", repositories=["Codertocat/Hello-World"], artifacts=["myapp"], registered_at=datetime.now(UTC)
    )
    key, value, headers = envelope.encode(
        id=str(uuid.uuid4()),
        source="/greenzone/release-svc",
        type=registered.event_type,
        subject=registered.key(),
        time=datetime.now(UTC),
        data=registered.model_dump(mode="json"),
    )
    await kafka.ensure_topics(settings, [RELEASE_TOPIC])
    producer = kafka.producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(RELEASE_TOPIC, value=value, key=key, headers=headers)
    finally:
        await producer.stop()

    async def known() -> int:
        return await count(db, "catalogue_keys", "service = 'greeter'")

    assert await eventually(known, timeout=30) == 2
    body = (GITHUB / "deployment_status/created.1.json").read_bytes()
    assert (
        await client.post("/webhooks/github", content=body, headers=github_headers("deployment_status", body))
    ).status_code == 202
    assert await db.fetchval("SELECT service FROM pipeline.deployments") == "greeter"
