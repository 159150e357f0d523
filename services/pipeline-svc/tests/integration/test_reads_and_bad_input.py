"""Reads of runs, incidents and evidence (filters, cursors across pages), bad input at every door (a problem, and
nothing stored), and whether a push reached the default branch."""

from __future__ import annotations

import base64
import json
from typing import Any

import asyncpg
import httpx
import pytest

from greenzone_common.contracts.pipeline import CommitsPushed
from greenzone_common.pagination import encode_cursor
from greenzone_common.problems import PROBLEM_BASE, PROBLEM_JSON

from ..conformance import CDEVENTS, GITHUB, GITLAB, TEKTON, load
from .conftest import (
    PIPELINE,
    VIEWER,
    binary_headers,
    body_of,
    count,
    github_headers,
    gitlab_headers,
    structured,
)

pytestmark = pytest.mark.integration

BATCH = "application/cloudevents-batch+json"
STRUCTURED = "application/cloudevents+json"
TEKTON_RUN = "default/taskrun/4ccb4f01-3ecc-4eb4-87e1-76f04efeee5c"  # the run key of the Tekton conformance event
#: where a request that is refused could have left something
STORES = (
    "raw_events",
    "runs",
    "deployments",
    "rollbacks",
    "pushes",
    "merged_changes",
    "artifacts",
    "evidence",
    "incidents",
    "outbox",
)
JUNIT = b"""<?xml version="1.0" encoding="utf-8"?><testsuite name="unit" tests="2" failures="0"><testcase
classname="t" name="a"/><testcase classname="t" name="b"/></testsuite>"""
SARIF = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Semgrep"}}, "results": []}]}


# --- helpers ---


async def stored(db: asyncpg.Connection) -> dict[str, int]:
    return {table: await count(db, table) for table in STORES}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """An RFC 9457 problem document, as API.md says every error is."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["type"] == PROBLEM_BASE + slug
    assert problem["status"] == status
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    return problem


def sha(n: int) -> str:
    return f"{n:x}" * 40


def pipelinerun(n: int, service: str, outcome: str) -> dict[str, Any]:
    """The conformance ``pipelinerun.finished`` as run ``build-<n>`` of ``service``, with its commit."""
    event = load(CDEVENTS / "v0.5.1/examples/pipelinerun_finished.json")
    event["context"]["id"] = f"run-{n}"
    event["subject"]["id"] = f"build-{n}"
    event["subject"]["content"]["outcome"] = outcome
    event["customData"] = {"service": service, "commit": sha(n)}
    return event


def run_key(n: int) -> str:
    return f"/event/source/123/build-{n}"


async def post_structured(client: httpx.AsyncClient, event: dict[str, Any]) -> None:
    response = await client.post(
        "/events", content=json.dumps(structured(event)), headers={**PIPELINE, "content-type": STRUCTURED}
    )
    assert response.status_code == 202, response.text


async def post_batch(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    """One request, so one transaction: the rows it makes share their database time."""
    body = json.dumps([structured(e) for e in events])
    response = await client.post("/events", content=body, headers={**PIPELINE, "content-type": BATCH})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events)


async def items(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(path, params=params, headers=VIEWER)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


async def pages(client: httpx.AsyncClient, path: str, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a list, following ``next_cursor`` until it is null."""
    out: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query, headers=VIEWER)
        assert response.status_code == 200, response.text
        page = response.json()
        out.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return out
        assert len(out) < 20, "the cursor never ends"


def flat(paged: list[list[dict[str, Any]]], field: str = "id") -> list[Any]:
    return [item[field] for page in paged for item in page]


# --- GET /runs ---


async def record_runs(client: httpx.AsyncClient) -> None:
    """Eight runs: four in one batch (one transaction, the same time), three one by one, then a Tekton task run."""
    await post_batch(
        client,
        [
            pipelinerun(0, "api", "success"),
            pipelinerun(1, "api", "failure"),
            pipelinerun(2, "web", "success"),
            pipelinerun(3, "api", "success"),
        ],
    )
    for n, service, outcome in ((4, "web", "failure"), (5, "api", "success"), (6, "api", "failure")):
        await post_structured(client, pipelinerun(n, service, outcome))
    ce_headers = {k.lower(): v for k, v in load(TEKTON / "taskrun.unknown.v1.headers.json").items()}
    response = await client.post(
        "/events",
        content=(TEKTON / "taskrun.unknown.v1.data.json").read_bytes(),
        headers={**PIPELINE, **ce_headers, "content-type": "application/json"},
    )
    assert response.status_code == 202, response.text


async def test_runs_filter_on_each_field_and_keep_newest_first(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await record_runs(client)
    everything = await items(client, "/runs")
    assert {
        (r["run_id"], r["service"], r["kind"], r["pipeline"], r["status"], r["outcome"], r["source"], r["commit"])
        for r in everything
    } == {
        (run_key(0), "api", "pipeline", "myPipeline", "completed", "success", "cdevents", sha(0)),
        (run_key(1), "api", "pipeline", "myPipeline", "completed", "failure", "cdevents", sha(1)),
        (run_key(2), "web", "pipeline", "myPipeline", "completed", "success", "cdevents", sha(2)),
        (run_key(3), "api", "pipeline", "myPipeline", "completed", "success", "cdevents", sha(3)),
        (run_key(4), "web", "pipeline", "myPipeline", "completed", "failure", "cdevents", sha(4)),
        (run_key(5), "api", "pipeline", "myPipeline", "completed", "success", "cdevents", sha(5)),
        (run_key(6), "api", "pipeline", "myPipeline", "completed", "failure", "cdevents", sha(6)),
        (TEKTON_RUN, "curl", "task", "curl", "running", None, "tekton", None),
    }
    order = [r["run_id"] for r in everything]
    # newest first; the batch's runs share their time and come by id, highest first
    assert order[:4] == [TEKTON_RUN, run_key(6), run_key(5), run_key(4)]
    batch = {r["id"]: r["run_id"] for r in everything[4:]}
    assert set(batch.values()) == {run_key(n) for n in range(4)}
    assert [r["id"] for r in everything[4:]] == sorted(batch, reverse=True)

    async def run_ids(**params: Any) -> list[str]:
        return [r["run_id"] for r in await items(client, "/runs", **params)]

    def expected(*keys: str) -> list[str]:
        return [k for k in order if k in keys]  # the same order as the whole list

    assert await run_ids(service="web") == expected(run_key(2), run_key(4))
    assert await run_ids(outcome="failure") == expected(run_key(1), run_key(4), run_key(6))
    assert await run_ids(service="api", outcome="failure") == expected(run_key(1), run_key(6))
    assert await run_ids(status="running") == [TEKTON_RUN]
    assert await run_ids(status="completed") == order[1:]
    assert await run_ids(source="tekton") == [TEKTON_RUN]
    assert await run_ids(source="cdevents") == order[1:]
    assert await run_ids(kind="task") == [TEKTON_RUN]
    assert await run_ids(kind="pipeline") == order[1:]
    assert await run_ids(pipeline="curl") == [TEKTON_RUN]
    assert await run_ids(commit=sha(4)) == [run_key(4)]
    assert await run_ids(service="nobody") == []

    # since: runs updated at or after a moment (the database's time of run 5)
    moment = await db.fetchval("SELECT updated_at FROM pipeline.runs WHERE run_key = $1", run_key(5))
    assert await run_ids(since=moment.isoformat()) == [TEKTON_RUN, run_key(6), run_key(5)]
    assert await run_ids(since="2999-01-01T00:00:00Z") == []
    assert await run_ids(since="2000-01-01T00:00:00Z") == order


async def test_runs_cursor_walks_every_run_once_in_order_even_as_runs_arrive(client: httpx.AsyncClient) -> None:
    await record_runs(client)
    everything = flat([await items(client, "/runs")])
    assert len(everything) == 8

    by_three = await pages(client, "/runs", 3)
    assert [len(p) for p in by_three] == [3, 3, 2]
    assert flat(by_three) == everything  # no duplicates, no gaps, the same order
    by_four = await pages(client, "/runs", 4)
    assert [len(p) for p in by_four] == [4, 4]  # an exact multiple ends without an empty page
    assert flat(by_four) == everything
    # ties in time (the batch) are split across pages without losing or repeating a run
    by_one = await pages(client, "/runs", 1)
    assert flat(by_one) == everything

    # filters hold on every page
    api = await pages(client, "/runs", 2, service="api")
    assert [len(p) for p in api] == [2, 2, 1]
    assert {r["service"] for p in api for r in p} == {"api"}
    assert flat(api) == [r["id"] for r in await items(client, "/runs", service="api")]

    # a page's cursor is a position: a run recorded after the first page does not shift the second
    first = (await client.get("/runs", params={"limit": 3}, headers=VIEWER)).json()
    await post_structured(client, pipelinerun(7, "api", "success"))
    second = (await client.get("/runs", params={"limit": 3, "cursor": first["next_cursor"]}, headers=VIEWER)).json()
    assert [r["id"] for r in second["items"]] == everything[3:6]
    assert (await items(client, "/runs"))[0]["run_id"] == run_key(7)


@pytest.mark.parametrize("path", ["/runs", "/incidents", "/evidence"])
@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        base64.urlsafe_b64encode(b'{"at": "2026-01-01T00:00:00Z"}').decode(),  # not a list
        encode_cursor(["yesterday", "x"]),  # not a time
        encode_cursor(["2026-01-01T00:00:00+00:00"]),  # no id
    ],
)
async def test_a_cursor_this_api_did_not_return_is_a_400_problem(
    client: httpx.AsyncClient, path: str, cursor: str
) -> None:
    response = await client.get(path, params={"cursor": cursor}, headers=VIEWER)
    assert_problem(response, 400, "invalid-cursor")


async def test_a_run_cursor_whose_id_is_not_a_run_id_is_a_400_problem(client: httpx.AsyncClient) -> None:
    cursor = encode_cursor(["2026-01-01T00:00:00+00:00", "not-a-uuid"])
    response = await client.get("/runs", params={"cursor": cursor}, headers=VIEWER)
    assert_problem(response, 400, "invalid-cursor")


# --- GET /incidents ---


def incident_detected(subject: str) -> dict[str, Any]:
    event = load(CDEVENTS / "v0.5.1/examples/incident_detected.json")
    event["context"]["id"] = f"detected-{subject}"
    event["subject"]["id"] = subject
    event["subject"]["content"]["service"]["id"] = "checkout"
    return event


async def test_incidents_cursor_walks_every_incident_once_newest_first(client: httpx.AsyncClient) -> None:
    # three from a monitoring tool in one batch (created together), then four reported one by one
    await post_batch(client, [incident_detected(s) for s in ("inc-a", "inc-b", "inc-c")])
    reported = []
    for service, environment, severity in (
        ("api", "production", "critical"),
        ("web", "staging", "high"),
        ("api", "staging", "high"),
        ("api", "production", "critical"),
    ):
        created = await client.post(
            "/incidents",
            json={"service": service, "environment": environment, "title": "down", "severity": severity},
            headers=PIPELINE,
        )
        assert created.status_code == 201, created.text
        reported.append(created.json()["id"])
    resolved = await client.post(f"/incidents/{reported[1]}/resolve", json={}, headers=PIPELINE)
    assert resolved.status_code == 200, resolved.text

    everything = await items(client, "/incidents")
    ids = [i["id"] for i in everything]
    assert ids[:4] == reported[::-1]  # newest first; resolving does not move an incident
    assert {i["service"] for i in everything[4:]} == {"checkout"} and len(ids) == 7

    for limit, sizes in ((2, [2, 2, 2, 1]), (1, [1] * 7), (7, [7])):
        paged = await pages(client, "/incidents", limit)
        assert [len(p) for p in paged] == sizes
        assert flat(paged) == ids  # no duplicates, no gaps, the same order

    api = await pages(client, "/incidents", 1, service="api")
    assert flat(api) == [reported[3], reported[2], reported[0]]
    critical = await pages(client, "/incidents", 1, service="api", severity="critical")
    assert flat(critical) == [reported[3], reported[0]]
    staging = await pages(client, "/incidents", 1, environment="staging")
    assert flat(staging) == [reported[2], reported[1]]
    assert flat(await pages(client, "/incidents", 2, state="resolved")) == [reported[1]]
    assert flat(await pages(client, "/incidents", 2, state="open")) == [i for i in ids if i != reported[1]]


# --- GET /evidence ---


async def upload(client: httpx.AsyncClient, kind: str, service: str, version: str) -> str:
    query = {"service": service, "version": version, "commit": sha(int(version[1:]))}
    if kind == "tests":
        content, media = JUNIT, "application/xml"
        path = "/evidence/junit"
    else:
        content, media = json.dumps(SARIF).encode(), "application/sarif+json"
        path = "/evidence/sarif"
    response = await client.post(path, params=query, content=content, headers={**PIPELINE, "content-type": media})
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == kind
    evidence_id: str = response.json()["id"]
    return evidence_id


async def test_evidence_cursor_walks_every_report_once_newest_first(client: httpx.AsyncClient) -> None:
    uploads = [
        ("tests", "api", "v1"),
        ("scan", "api", "v1"),
        ("tests", "api", "v2"),
        ("tests", "web", "v1"),
        ("scan", "web", "v2"),
    ]
    posted = [await upload(client, *u) for u in uploads]
    everything = [e["id"] for e in await items(client, "/evidence")]
    assert everything == posted[::-1]

    for limit, sizes in ((2, [2, 2, 1]), (1, [1] * 5), (5, [5])):
        paged = await pages(client, "/evidence", limit)
        assert [len(p) for p in paged] == sizes
        assert flat(paged) == everything

    assert flat(await pages(client, "/evidence", 1, kind="scan")) == [posted[4], posted[1]]
    assert flat(await pages(client, "/evidence", 1, service="api")) == [posted[2], posted[1], posted[0]]
    assert flat(await pages(client, "/evidence", 1, service="api", version="v1")) == [posted[1], posted[0]]
    assert flat(await pages(client, "/evidence", 1, commit=sha(2))) == [posted[4], posted[2]]
    assert (await client.get("/evidence", params={"kind": "lint"}, headers=VIEWER)).status_code == 422

    # a report uploaded after the first page does not shift the second
    first = (await client.get("/evidence", params={"limit": 2}, headers=VIEWER)).json()
    newest = await upload(client, "tests", "api", "v3")
    second = (await client.get("/evidence", params={"limit": 2, "cursor": first["next_cursor"]}, headers=VIEWER)).json()
    assert [e["id"] for e in second["items"]] == everything[2:4]
    assert (await items(client, "/evidence"))[0]["id"] == newest


# --- bad input: a problem, and nothing stored ---


async def test_gitlab_invalid_json_is_a_400_problem_and_stores_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    before = await stored(db)
    for body in (b'{"object_kind": "push", "ref": ', b'["not", "an", "object"]'):
        response = await client.post("/webhooks/gitlab", content=body, headers=gitlab_headers("Push Hook"))
        assert_problem(response, 400, "invalid-json")
    assert await stored(db) == before


@pytest.mark.parametrize(
    ("path", "body", "headers", "content_type"),
    [
        # a push it would record, were it sent as JSON
        (
            "/webhooks/gitlab",
            (GITLAB / "official-docs/push.json").read_bytes(),
            lambda body: gitlab_headers("Push Hook"),
            "text/plain",
        ),
        # correctly signed; only the content type is wrong
        (
            "/webhooks/github",
            (GITHUB / "push/event.5.json").read_bytes(),
            lambda body: github_headers("push", body),
            "application/xml",
        ),
    ],
    ids=["gitlab", "github"],
)
async def test_a_webhook_of_the_wrong_content_type_is_a_415_problem_and_stores_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection, path: str, body: bytes, headers: Any, content_type: str
) -> None:
    before = await stored(db)
    sent = {**headers(body), "content-type": content_type}
    problem = assert_problem(await client.post(path, content=body, headers=sent), 415, "unsupported-media-type")
    assert content_type in problem["detail"]
    assert await stored(db) == before


async def test_sarif_invalid_json_is_a_400_problem_and_stores_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    before = await stored(db)
    response = await client.post(
        "/evidence/sarif",
        params={"service": "api", "version": "1.4.2"},
        content=b'{"version": "2.1.0", "runs": [',
        headers={**PIPELINE, "content-type": "application/sarif+json"},
    )
    assert_problem(response, 400, "invalid-json")
    assert await stored(db) == before


async def test_binary_event_with_an_unknown_specversion_is_a_400_problem_and_stores_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    before = await stored(db)
    event = load(CDEVENTS / "v0.5.1/examples/service_deployed.json")  # a deployment it would record under 1.0
    headers = binary_headers(event, specversion="0.3")
    problem = assert_problem(
        await client.post("/events", content=json.dumps(event), headers=headers), 400, "unsupported-specversion"
    )
    assert "0.3" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["header", "specversion"]
    assert await stored(db) == before


# --- pushes and the default branch ---


async def pushed(db: asyncpg.Connection) -> list[tuple[str, str | None, bool]]:
    rows = await db.fetch("SELECT branch, default_branch, on_default_branch FROM pipeline.pushes ORDER BY branch")
    return [(r["branch"], r["default_branch"], r["on_default_branch"]) for r in rows]


async def announced(db: asyncpg.Connection) -> list[CommitsPushed]:
    rows = await db.fetch("SELECT data FROM pipeline.outbox WHERE type = $1 ORDER BY seq", CommitsPushed.event_type)
    return [CommitsPushed.model_validate(json.loads(r["data"])) for r in rows]


async def test_github_push_is_on_the_default_branch_only_when_its_branch_is_the_default(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """The same commit pushed to a feature branch, then to master (a fast-forward): two pushes, only the second
    on the default branch (the one lead time counts)."""
    to_master = load(GITHUB / "push/event.5.json")
    assert to_master["ref"] == "refs/heads/master" and to_master["repository"]["default_branch"] == "master"
    to_feature = {**to_master, "ref": "refs/heads/feature/login"}
    for payload in (to_feature, to_master):
        body = body_of(payload)
        response = await client.post("/webhooks/github", content=body, headers=github_headers("push", body))
        assert response.status_code == 202 and response.json()["facts"] == 1, response.text
    assert await pushed(db) == [("feature/login", "master", False), ("master", "master", True)]
    events = await announced(db)
    assert [(e.branch, e.default_branch, e.on_default_branch) for e in events] == [
        ("feature/login", "master", False),
        ("master", "master", True),
    ]
    assert all([c.sha for c in e.commits] == [to_master["head_commit"]["id"]] for e in events)


async def test_gitlab_push_is_on_the_default_branch_only_when_its_branch_is_the_default(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    to_master = load(GITLAB / "official-docs/push.json")
    assert to_master["ref"] == "refs/heads/master" and to_master["project"]["default_branch"] == "master"
    to_feature = {**to_master, "ref": "refs/heads/feature/login"}
    for payload in (to_feature, to_master):
        response = await client.post("/webhooks/gitlab", content=body_of(payload), headers=gitlab_headers("Push Hook"))
        assert response.status_code == 202 and response.json()["facts"] == 1, response.text
    assert await pushed(db) == [("feature/login", "master", False), ("master", "master", True)]
    assert [e.on_default_branch for e in await announced(db)] == [False, True]
