"""POST /events: CloudEvents in the three modes, CDEvents v0.4/v0.5 validated, Tekton, dedupe, bad input."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from greenzone_common.testing.helpers import bearer

from ..conformance import CDEVENTS, TEKTON, load
from .conftest import PIPELINE, VIEWER, binary_headers, count, outbox_types, structured

pytestmark = pytest.mark.integration
BATCH = "application/cloudevents-batch+json"
STRUCTURED = "application/cloudevents+json"


@pytest.mark.parametrize("release", ["v0.4.1", "v0.5.1"])
async def test_every_cdevents_example_is_accepted_in_one_batch(
    client: httpx.AsyncClient, db: asyncpg.Connection, release: str
) -> None:
    examples = sorted((CDEVENTS / release / "examples").glob("*.json"))
    # the examples share one context id and source (the same event, as far as dedupe on (source, id) goes):
    # each is given its own id here, the only change
    batch = []
    for path in examples:
        event = load(path)
        event["context"]["id"] = f"{path.stem}-{event['context']['id']}"
        batch.append(structured(event))
    response = await client.post("/events", content=json.dumps(batch), headers={**PIPELINE, "content-type": BATCH})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(examples)
    assert await count(db, "raw_events") == len(examples)
    # the batch's origin and kept headers, sent once for all its raw events, are in every one of them
    kept = await db.fetch("SELECT DISTINCT origin, headers::text FROM pipeline.raw_events")
    assert [(r["origin"], json.loads(r["headers"])) for r in kept] == [
        (
            "cloudevents",
            {"content-type": BATCH, "user-agent": client.headers["user-agent"], "x-greenzone-sub": "ci-bot"},
        )
    ]
    assert await count(db, "deployments") == 2  # service.deployed and service.upgraded
    assert await count(db, "rollbacks") == 1
    assert await count(db, "deployments", "rolled_back") == 1  # the latest deployment before the rollback
    assert await count(db, "incidents") == 1  # detected, reported and resolved of incident-123
    incident = await db.fetchrow("SELECT * FROM pipeline.incidents")
    assert incident["service"] == "myApp" and incident["resolved_at"] is not None
    assert await count(db, "evidence", "kind = 'tests' AND outcome = 'failure'") == 1
    # facts learned from CDEvents are not re-told as CDEvents
    assert not [t for t in await outbox_types(db) if t.startswith("dev.cdevents.")]


async def test_binary_mode_cdevent_and_dedupe_on_source_and_id(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    event = load(CDEVENTS / "v0.5.1/examples/service_deployed.json")
    headers = binary_headers(event)
    first = await client.post("/events", content=json.dumps(event), headers=headers)
    assert first.status_code == 202, first.text
    again = await client.post("/events", content=json.dumps(event), headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    other_source = await client.post("/events", content=json.dumps(event), headers={**headers, "ce-source": "/other"})
    assert other_source.status_code == 202
    assert await count(db, "raw_events") == 2
    row = await db.fetchrow("SELECT * FROM pipeline.deployments LIMIT 1")
    assert (row["service"], row["environment"], row["outcome"]) == ("myapp", "test123", "success")


async def test_tekton_event_in_binary_mode(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    ce_headers = {k.lower(): v for k, v in load(TEKTON / "taskrun.unknown.v1.headers.json").items()}
    body = (TEKTON / "taskrun.unknown.v1.data.json").read_bytes()
    response = await client.post(
        "/events", content=body, headers={**PIPELINE, **ce_headers, "content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    run = await db.fetchrow("SELECT * FROM pipeline.runs")
    assert (run["kind"], run["status"], run["pipeline"], run["source"]) == ("task", "running", "curl", "tekton")


async def test_a_batch_with_one_invalid_event_is_400_naming_the_field_and_stores_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    good = structured(load(CDEVENTS / "v0.5.1/examples/pipelinerun_finished.json"))
    bad_event = load(CDEVENTS / "v0.5.1/examples/service_deployed.json")
    del bad_event["subject"]["content"]["environment"]
    bad = structured(bad_event)
    response = await client.post(
        "/events", content=json.dumps([good, bad]), headers={**PIPELINE, "content-type": BATCH}
    )
    assert response.status_code == 400
    problem = response.json()
    assert "subject.content.environment" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", 1, "data", "subject", "content", "environment"]
    assert await count(db, "raw_events") == 0 and await count(db, "outbox") == 0 and await count(db, "runs") == 0


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        (STRUCTURED, b"{oops", 400),
        ("text/plain", b"hello", 415),
        (STRUCTURED, json.dumps({"specversion": "0.3", "id": "1", "source": "/s", "type": "x"}).encode(), 400),
        (
            STRUCTURED,
            json.dumps({"specversion": "1.0", "id": "1", "source": "/s", "type": "com.example.x"}).encode(),
            400,
        ),
    ],
)
async def test_bad_events_are_problems_and_store_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection, content_type: str, body: bytes, status: int
) -> None:
    response = await client.post("/events", content=body, headers={**PIPELINE, "content-type": content_type})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert await count(db, "raw_events") == 0


async def test_body_over_the_cap_is_413(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    event = structured(load(CDEVENTS / "v0.5.1/examples/pipelinerun_finished.json"))
    batch = [{**event, "id": f"e{i}"} for i in range(1000)]
    response = await client.post("/events", content=json.dumps(batch), headers={**PIPELINE, "content-type": BATCH})
    assert response.status_code == 413
    assert await count(db, "raw_events") == 0


async def test_events_need_the_pipeline_role(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    body = json.dumps(structured(load(CDEVENTS / "v0.5.1/examples/pipelinerun_finished.json")))
    headers = {"content-type": STRUCTURED}
    assert (await client.post("/events", content=body, headers=headers)).status_code == 401
    assert (await client.post("/events", content=body, headers={**headers, **VIEWER})).status_code == 403
    bad_token = {"Authorization": "Bearer not-a-jwt"}
    assert (await client.post("/events", content=body, headers={**headers, **bad_token})).status_code == 401
    admin = bearer("root", "admin")
    assert (await client.post("/events", content=body, headers={**headers, **admin})).status_code == 202
    assert await count(db, "raw_events") == 1


async def test_change_merged_starts_at_its_change_created(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    created = load(CDEVENTS / "v0.5.1/examples/change_created.json")
    merged = load(CDEVENTS / "v0.5.1/examples/change_merged.json")
    created["context"]["timestamp"] = "2023-03-19T10:00:00Z"
    merged["subject"]["id"] = created["subject"]["id"]
    merged["context"]["id"] = "merged-1"
    for event in (created, merged):
        response = await client.post(
            "/events", content=json.dumps(structured(event)), headers={**PIPELINE, "content-type": STRUCTURED}
        )
        assert response.status_code == 202, response.text
    row = await db.fetchrow("SELECT * FROM pipeline.merged_changes")
    assert row["started_at"].isoformat() == "2023-03-19T10:00:00+00:00"
    assert row["service"] == "TestOrg"  # repository id "TestRepo/TestOrg": its short name


async def test_change_created_arriving_after_its_merge_corrects_the_start(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    created = load(CDEVENTS / "v0.5.1/examples/change_created.json")
    merged = load(CDEVENTS / "v0.5.1/examples/change_merged.json")
    created["context"]["timestamp"] = "2023-03-19T10:00:00Z"
    merged["subject"]["id"] = created["subject"]["id"]
    merged["context"]["id"] = "merged-2"
    for event in (merged, created):  # the other way round
        response = await client.post(
            "/events", content=json.dumps(structured(event)), headers={**PIPELINE, "content-type": STRUCTURED}
        )
        assert response.status_code == 202, response.text
    row = await db.fetchrow("SELECT * FROM pipeline.merged_changes")
    assert row["started_at"].isoformat() == "2023-03-19T10:00:00+00:00"
    announced = [
        json.loads(r["data"])["started_at"]
        for r in await db.fetch("SELECT data FROM pipeline.outbox WHERE type LIKE '%change.merged%' ORDER BY seq")
    ]
    assert announced[-1] == "2023-03-19T10:00:00Z" and len(announced) == 2
