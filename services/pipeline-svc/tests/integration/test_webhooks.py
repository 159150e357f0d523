"""GitHub and GitLab webhooks: signatures before anything is stored, dedupe, facts and their events."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import httpx
import pytest
from sqlalchemy import event

from greenzone_common.contracts.pipeline import DeploymentObserved
from pipeline_svc.config import Settings
from pipeline_svc.intake.service import DeliveryBatches
from pipeline_svc.main import create_app
from pipeline_svc.sources import github

from ..conformance import GITHUB, GITLAB, GITLAB_EVENT_HEADER, github_files, gitlab_files, load
from .conftest import body_of, count, github_headers, gitlab_headers, outbox_types, running

pytestmark = pytest.mark.integration


async def test_signed_github_deployment_status_is_recorded_once_with_its_events(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    body = (GITHUB / "deployment_status/created.1.json").read_bytes()
    headers = github_headers("deployment_status", body, delivery="d-1")
    first = await client.post("/webhooks/github", content=body, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "accepted" and first.json()["facts"] == 1

    row = await db.fetchrow("SELECT * FROM pipeline.deployments")
    assert row is not None
    assert (row["service"], row["environment"], row["outcome"], row["commit"], row["source"]) == (
        "Hello-World",
        "production",
        "success",
        "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
        "github",
    )
    raw = await db.fetchrow("SELECT * FROM pipeline.raw_events")
    assert raw["body"] == body and raw["origin"] == "github" and raw["delivery_key"] == "d-1"
    assert json.loads(raw["headers"])["x-github-event"] == "deployment_status"
    assert await outbox_types(db) == [DeploymentObserved.event_type, "dev.cdevents.service.deployed.0.3.0"]

    again = await client.post("/webhooks/github", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert await count(db, "raw_events") == 1 and await count(db, "deployments") == 1
    assert len(await outbox_types(db)) == 2


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "garbage"])
async def test_github_bad_or_missing_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection, signature: str | None
) -> None:
    body = (GITHUB / "push/event.5.json").read_bytes()
    headers = github_headers("push", body)
    if signature is None:
        del headers["x-hub-signature-256"]
    else:
        headers["x-hub-signature-256"] = signature
    response = await client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert await count(db, "raw_events") == 0 and await count(db, "outbox") == 0


async def test_github_signed_with_another_secret_is_refused(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    body = (GITHUB / "push/event.5.json").read_bytes()
    response = await client.post("/webhooks/github", content=body, headers=github_headers("push", body, secret="x"))
    assert response.status_code == 401
    assert await count(db, "raw_events") == 0


async def test_github_unused_event_is_accepted_and_ignored(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    body = body_of({"zen": "Design for failure.", "hook_id": 1})
    response = await client.post("/webhooks/github", content=body, headers=github_headers("ping", body))
    assert response.status_code == 202 and response.json()["status"] == "ignored"
    assert await count(db, "raw_events") == 0


async def test_github_bad_input_is_a_problem_and_stores_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    body = b"{not json"
    response = await client.post("/webhooks/github", content=body, headers=github_headers("push", body))
    assert response.status_code == 400 and response.json()["type"].endswith("/invalid-json")
    body = b"<push/>"
    headers = {**github_headers("push", body), "content-type": "application/xml"}
    response = await client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 415
    assert await count(db, "raw_events") == 0


async def test_every_used_github_conformance_payload_is_accepted(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    files = github_files(github.USED_EVENTS)
    for path in files:
        body = path.read_bytes()
        response = await client.post("/webhooks/github", content=body, headers=github_headers(path.parent.name, body))
        assert response.status_code == 202, (path, response.text)
    assert await count(db, "raw_events") == len(files)
    # the finished workflow runs are run.finished; the one that still says "queued" is not (quirk)
    assert await count(db, "runs", "kind = 'pipeline' AND status = 'completed'") == 1
    assert await count(db, "runs", "kind = 'pipeline' AND status = 'queued'") == 1
    assert await count(db, "merged_changes") == 0  # both closed PR examples say merged: false
    assert await count(db, "pushes") == 1  # event.5/6 are the same push; tags and deletions are not pushes
    assert await count(db, "deployments") == 1  # four success statuses of one deployment; in_progress is no outcome


async def test_gitlab_token_is_checked_before_anything_is_stored(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    body = (GITLAB / "official-docs/push.json").read_bytes()
    for token in ("wrong", ""):
        response = await client.post("/webhooks/gitlab", content=body, headers=gitlab_headers("Push Hook", token=token))
        assert response.status_code == 401
    headers = gitlab_headers("Push Hook")
    del headers["x-gitlab-token"]
    assert (await client.post("/webhooks/gitlab", content=body, headers=headers)).status_code == 401
    assert await count(db, "raw_events") == 0


async def test_gitlab_deployment_replayed_delivery_is_200_and_keeps_the_full_sha(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    body = (GITLAB / "official-docs/deployment.json").read_bytes()
    headers = gitlab_headers("Deployment Hook", delivery="uuid-1")
    assert (await client.post("/webhooks/gitlab", content=body, headers=headers)).status_code == 202
    replay = await client.post("/webhooks/gitlab", content=body, headers=headers)
    assert replay.status_code == 200
    row = await db.fetchrow("SELECT * FROM pipeline.deployments")
    assert row["commit"] == "279484c09fbe69ededfced8c1bb6e6d24616b468"
    assert row["service"] == "test-deployment-webhooks" and row["environment"] == "staging"
    raw = await db.fetchrow("SELECT headers FROM pipeline.raw_events")
    assert "x-gitlab-token" not in json.loads(raw["headers"])  # the secret is never stored
    assert await count(db, "raw_events") == 1


async def test_every_gitlab_conformance_payload_is_accepted(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    for path in gitlab_files():
        payload = load(path)
        header = GITLAB_EVENT_HEADER[payload["object_kind"]]
        response = await client.post("/webhooks/gitlab", content=path.read_bytes(), headers=gitlab_headers(header))
        assert response.status_code == 202, (path, response.text)
    runs = await db.fetch("SELECT kind, commit, status FROM pipeline.runs ORDER BY kind, run_key")
    assert {r["commit"] for r in runs if r["kind"] == "job"} == {
        "2293ada6b400935a1378653304eaf6221e0fdb8f",
        "95d49d1efbd941908580e79d65e4b5ecaf4a8305",
    }  # SHAs, never the pipeline id in commit.id
    assert await count(db, "artifacts") == 1 and await count(db, "pushes") == 1


async def test_github_form_encoded_delivery_is_accepted(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    """GitHub's other content type: application/x-www-form-urlencoded with the JSON in ``payload``."""
    from urllib.parse import urlencode

    body = urlencode({"payload": (GITHUB / "deployment_status/created.1.json").read_text()}).encode()
    headers = {**github_headers("deployment_status", body), "content-type": "application/x-www-form-urlencoded"}
    response = await client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert await count(db, "deployments") == 1


async def test_webhooks_in_flight_are_accepted_together_each_with_its_own_outcome_and_trace(
    settings: Settings, db: asyncpg.Connection
) -> None:
    """Concurrent webhooks go to the database in batches (one transaction each, ``DeliveryBatches``), and each
    answer is what it would be on its own: the same deployment told by 12 deliveries is one fact (one answer says
    1, the others 0), a delivery sent twice at once is stored once (the other answer: duplicate), and each
    delivery's events carry its own request's trace."""
    body = (GITHUB / "deployment_status/created.1.json").read_bytes()
    deliveries = [f"batch-{i}" for i in range(12)] + ["batch-3"]
    traces = [f"{i + 1:032x}" for i in range(len(deliveries))]
    app = create_app(settings)
    async with running(app) as client:
        batches = DeliveryBatches.of(app.state.runtime.sessions, app.state.runtime.outbox)
        before = (batches.accept.stats.batches, batches.accept.stats.items)
        sent: list[str] = []
        event.listen(
            app.state.runtime.engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2].split("(")[0])
        )
        responses = await asyncio.gather(
            *(
                client.post(
                    "/webhooks/github",
                    content=body,
                    headers={
                        **github_headers("deployment_status", body, delivery=d),
                        "traceparent": f"00-{t}-{1:016x}-01",
                    },
                )
                for d, t in zip(deliveries, traces, strict=True)
            )
        )
        assert batches.accept.stats.items - before[1] == 13
        made = batches.accept.stats.batches - before[0]
        assert made < 13  # together, not one transaction each
        # and in few statements: the raw events and the outbox rows of a batch in one each
        assert sent.count("INSERT INTO pipeline.raw_events ") == made
        assert sent.count("INSERT INTO pipeline.deployments ") == made  # deployments only insert: together too
        assert sent.count("INSERT INTO pipeline.outbox ") <= made

    answers = [r.json() for r in responses]
    assert sorted(r.status_code for r in responses) == [200] + [202] * 12
    assert sorted(a["status"] for a in answers) == ["accepted"] * 12 + ["duplicate"]
    assert sorted(a.get("facts", 0) for a in answers) == [0] * 12 + [1]
    assert await count(db, "raw_events") == 12 and await count(db, "deployments") == 1
    [recorder] = [i for i, a in enumerate(answers) if a.get("facts") == 1]
    rows = await db.fetch("SELECT headers FROM pipeline.outbox ORDER BY seq")
    assert len(rows) == 2
    assert all(json.loads(r["headers"])["traceparent"].split("-")[1] == traces[recorder] for r in rows)


async def test_a_batch_mixing_facts_that_only_insert_with_runs_gives_each_delivery_its_own_answer(
    settings: Settings, db: asyncpg.Connection
) -> None:
    """Deployments of several deliveries are recorded in one statement; a job run (a fact that merges into what is
    recorded) is recorded on its own, in order. Each answer counts only its own facts, and each event carries the
    trace of the delivery that told it."""
    payload = json.loads((GITHUB / "deployment_status/created.1.json").read_text())
    bodies = []
    for i in range(6):
        payload["deployment"]["id"] = 9_000 + i
        bodies.append(("deployment_status", json.dumps(payload).encode()))
    bodies.insert(3, ("workflow_job", (GITHUB / "workflow_job/completed.1.json").read_bytes()))
    traces = [f"{i + 1:032x}" for i in range(len(bodies))]
    app = create_app(settings)
    async with running(app) as client:
        batches = DeliveryBatches.of(app.state.runtime.sessions, app.state.runtime.outbox)
        before = batches.accept.stats.batches
        responses = await asyncio.gather(
            *(
                client.post(
                    "/webhooks/github",
                    content=body,
                    headers={**github_headers(kind, body), "traceparent": f"00-{t}-{1:016x}-01"},
                )
                for (kind, body), t in zip(bodies, traces, strict=True)
            )
        )
        assert batches.accept.stats.batches - before < len(bodies)

    answers = [r.json() for r in responses]
    assert [a["status"] for a in answers] == ["accepted"] * len(bodies)
    assert [a["facts"] for a, (kind, _) in zip(answers, bodies, strict=True) if kind == "deployment_status"] == [1] * 6
    assert await count(db, "deployments") == 6 and await count(db, "runs") == 1
    told = {f"{payload['repository']['full_name']}/deployments/{9_000 + i}": traces[i + (i >= 3)] for i in range(6)}
    rows = await db.fetch("SELECT data, headers FROM pipeline.outbox WHERE type = $1", DeploymentObserved.event_type)
    assert len(rows) == 6
    for row in rows:
        trace = json.loads(row["headers"])["traceparent"].split("-")[1]
        assert told[json.loads(row["data"])["source_id"]] == trace
