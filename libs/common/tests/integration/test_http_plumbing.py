"""The HTTP plumbing every service shares, seen through the real change-svc app on real PostgreSQL and a real broker:
problem details, authentication, validation that changes nothing, body size cap, Idempotency-Key, health,
readiness, metrics and OpenAPI.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from change_svc.config import Settings
from change_svc.main import create_app
from greenzone_common.devstack import Tansu
from greenzone_common.testing.helpers import bearer, eventually, running

pytestmark = pytest.mark.integration

MAX_BODY_BYTES = 2048
PROBLEM_JSON = "application/problem+json"
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

REQUESTER = bearer("alice", "requester")


def new_change(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Raise API pool size",
        "description": "More connections for the peak",
        "type": "normal",
        "service": "api",
        "environment": "production",
        "planned_start": "2026-03-02T09:00:00Z",
        "planned_end": "2026-03-02T10:00:00Z",
        "template_id": None,
        "release_id": None,
        "commits": ["4b825dc642cb6eb9a060e54bf8d69288fbee4904"],
        "version": "1.4.2",
    }
    body.update(overrides)
    return body


@pytest.fixture
async def client(settings_for: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(Settings, max_body_bytes=MAX_BODY_BYTES))
    async with running(app) as client:
        yield client


@pytest.fixture
def stored(database_url: str) -> Callable[[], Any]:
    """``await stored()``: how many changes and outbox rows the change schema holds."""

    async def counts() -> dict[str, int]:
        conn = await asyncpg.connect(database_url)
        try:
            return {
                "changes": await conn.fetchval("SELECT count(*) FROM change.changes"),
                "outbox": await conn.fetchval("SELECT count(*) FROM change.outbox"),
            }
        finally:
            await conn.close()

    return counts


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://")
    assert problem["title"]
    assert problem["detail"]
    return problem


# --- authentication -----------------------------------------------------------------------------------------------


async def test_missing_token_is_401(client: httpx.AsyncClient, stored: Callable[[], Any]) -> None:
    response = await client.post("/changes", json=new_change())

    problem = assert_problem(response, 401)
    assert problem["title"] == "Unauthorized"
    assert "bearer" in problem["detail"].lower()
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await stored() == {"changes": 0, "outbox": 0}


async def test_invalid_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/changes", json=new_change(), headers={"Authorization": "Bearer not-a-jwt"})

    assert assert_problem(response, 401)["type"].endswith("/invalid-token")


async def test_token_without_a_requester_role_is_403(client: httpx.AsyncClient, stored: Callable[[], Any]) -> None:
    response = await client.post("/changes", json=new_change(), headers=bearer("victor", "viewer"))

    problem = assert_problem(response, 403)
    assert problem["type"].endswith("/forbidden")
    assert "requester" in problem["detail"]
    assert await stored() == {"changes": 0, "outbox": 0}


# --- creating a change --------------------------------------------------------------------------------------------


async def test_created_change_is_a_numbered_draft_with_its_risk(
    client: httpx.AsyncClient, stored: Callable[[], Any]
) -> None:
    response = await client.post("/changes", json=new_change(), headers=REQUESTER)

    assert response.status_code == 201, response.text
    change = response.json()
    assert change["number"] == "CHG-000001"
    assert change["state"] == "draft"
    assert change["outcome"] is None
    assert change["requested_by"] == "alice"
    assert isinstance(change["id"], str) and change["id"]
    assert change["risk"]["level"] in ("low", "medium", "high")
    assert {f["code"] for f in change["risk"]["factors"]} >= {"NORMAL_CHANGE", "PRODUCTION_ENVIRONMENT"}
    assert change["risk"]["score"] == sum(f["points"] for f in change["risk"]["factors"])
    assert change["required_approvals"] >= 1
    assert change["approvals"] == []
    assert await stored() == {"changes": 1, "outbox": 2}  # change.created and the CDEvents ticket.created


async def test_created_change_reports_every_time_in_utc(client: httpx.AsyncClient) -> None:
    body = new_change(planned_start="2026-03-02T11:00:00+02:00", planned_end="2026-03-02T12:00:00+02:00")

    change = (await client.post("/changes", json=body, headers=REQUESTER)).json()

    assert change["planned_start"] == "2026-03-02T09:00:00Z"
    assert change["planned_end"] == "2026-03-02T10:00:00Z"
    for name in ("created_at", "updated_at"):
        assert ISO_UTC.match(change[name]), f"{name}={change[name]!r}"


async def test_created_change_can_be_read_back(client: httpx.AsyncClient) -> None:
    created = (await client.post("/changes", json=new_change(), headers=REQUESTER)).json()

    response = await client.get(f"/changes/{created['id']}", headers=bearer("victor", "viewer"))

    assert response.status_code == 200
    assert response.json() == created


async def test_every_answer_names_its_request_and_the_history_records_that_id(client: httpx.AsyncClient) -> None:
    created = await client.post("/changes", json=new_change(), headers=REQUESTER)
    generated = created.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)

    given = "ci-run-42/step-3"
    submitted = await client.post(
        f"/changes/{created.json()['id']}/submit", headers={**REQUESTER, "X-Request-Id": given}
    )
    assert submitted.headers["x-request-id"] == given
    history = (await client.get(f"/changes/{created.json()['id']}/history", headers=REQUESTER)).json()
    assert [entry["request_id"] for entry in history] == [generated, given]

    refused = await client.post("/changes", json=new_change(), headers={"X-Request-Id": given})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == given  # problems name it too


async def test_unknown_change_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/changes/00000000-0000-4000-8000-000000000000", headers=REQUESTER)

    problem = assert_problem(response, 404)
    assert "00000000-0000-4000-8000-000000000000" in problem["detail"]
    assert problem["instance"] == "/changes/00000000-0000-4000-8000-000000000000"


# --- validation changes nothing -----------------------------------------------------------------------------------


async def test_invalid_body_is_422_naming_the_field_and_stores_nothing(
    client: httpx.AsyncClient, stored: Callable[[], Any]
) -> None:
    response = await client.post("/changes", json=new_change(type="risky", title=""), headers=REQUESTER)

    problem = assert_problem(response, 422)
    assert problem["type"].endswith("/validation-error")
    locs = [error["loc"] for error in problem["errors"]]
    assert ["body", "type"] in locs
    assert ["body", "title"] in locs
    assert all(error["msg"] for error in problem["errors"])
    assert "type" in problem["detail"]
    assert await stored() == {"changes": 0, "outbox": 0}


async def test_missing_required_field_is_422(client: httpx.AsyncClient) -> None:
    body = new_change()
    del body["service"]

    problem = assert_problem(await client.post("/changes", json=body, headers=REQUESTER), 422)

    assert ["body", "service"] in [error["loc"] for error in problem["errors"]]


async def test_standard_change_without_template_is_422(client: httpx.AsyncClient, stored: Callable[[], Any]) -> None:
    response = await client.post("/changes", json=new_change(type="standard"), headers=REQUESTER)

    problem = assert_problem(response, 422)
    assert any("template_id" in error["msg"] for error in problem["errors"])
    assert await stored() == {"changes": 0, "outbox": 0}


async def test_invalid_json_is_400(client: httpx.AsyncClient, stored: Callable[[], Any]) -> None:
    response = await client.post(
        "/changes", content=b'{"title": "oops",', headers={**REQUESTER, "Content-Type": "application/json"}
    )

    problem = assert_problem(response, 400)
    assert "JSON" in problem["detail"]
    assert await stored() == {"changes": 0, "outbox": 0}


# --- body size cap ------------------------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413_and_stores_nothing(
    client: httpx.AsyncClient, stored: Callable[[], Any]
) -> None:
    body = new_change(description="x" * (MAX_BODY_BYTES + 1))

    response = await client.post("/changes", json=body, headers=REQUESTER)

    problem = assert_problem(response, 413)
    assert str(MAX_BODY_BYTES) in problem["detail"]
    assert await stored() == {"changes": 0, "outbox": 0}


async def test_streamed_body_over_the_limit_is_413_and_stores_nothing(
    client: httpx.AsyncClient, stored: Callable[[], Any]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "Raise API pool size", "description": "'
        for _ in range(8):
            yield b"x" * 512
        yield b'", "type": "normal", "service": "api", "environment": "production"}'

    response = await client.post(
        "/changes", content=chunks(), headers={**REQUESTER, "Content-Type": "application/json"}
    )

    assert_problem(response, 413)
    assert await stored() == {"changes": 0, "outbox": 0}


async def test_body_over_the_limit_does_not_use_up_its_idempotency_key(
    client: httpx.AsyncClient, stored: Callable[[], Any]
) -> None:
    headers = {**REQUESTER, "Idempotency-Key": "create-pool-change-0"}

    too_large = await client.post("/changes", json=new_change(description="x" * MAX_BODY_BYTES), headers=headers)
    retry = await client.post("/changes", json=new_change(), headers=headers)

    assert_problem(too_large, 413)
    assert retry.status_code == 201, retry.text
    assert await stored() == {"changes": 1, "outbox": 2}


# --- Idempotency-Key ----------------------------------------------------------------------------------------------


async def test_retry_with_the_same_idempotency_key_replays_the_first_response(
    client: httpx.AsyncClient, stored: Callable[[], Any]
) -> None:
    headers = {**REQUESTER, "Idempotency-Key": "create-pool-change-1"}

    first = await client.post("/changes", json=new_change(), headers=headers)
    retry = await client.post("/changes", json=new_change(), headers=headers)

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["content-type"] == "application/json"
    assert retry.headers.get("idempotent-replayed") == "true"
    assert await stored() == {"changes": 1, "outbox": 2}


async def test_same_idempotency_key_with_another_body_is_409(
    client: httpx.AsyncClient, stored: Callable[[], Any]
) -> None:
    headers = {**REQUESTER, "Idempotency-Key": "create-pool-change-2"}
    await client.post("/changes", json=new_change(), headers=headers)

    response = await client.post("/changes", json=new_change(title="Something else"), headers=headers)

    assert_problem(response, 409)
    assert await stored() == {"changes": 1, "outbox": 2}


async def test_idempotency_keys_belong_to_their_caller(client: httpx.AsyncClient, stored: Callable[[], Any]) -> None:
    key = {"Idempotency-Key": "shared-key"}

    alices = await client.post("/changes", json=new_change(), headers={**REQUESTER, **key})
    bobs = await client.post("/changes", json=new_change(), headers={**bearer("bob", "requester"), **key})

    assert alices.status_code == bobs.status_code == 201
    assert alices.json()["id"] != bobs.json()["id"]
    assert await stored() == {"changes": 2, "outbox": 4}


# --- health, readiness, metrics, OpenAPI --------------------------------------------------------------------------


async def test_healthz_is_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_is_200_when_database_and_broker_are_reachable(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "broker": True}


async def test_readyz_is_503_once_the_broker_is_gone(settings_for: Callable[..., Settings], own_broker: Tansu) -> None:
    app = create_app(settings_for(Settings, kafka_bootstrap=own_broker.bootstrap))
    async with running(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        own_broker.stop()

        async def not_ready() -> httpx.Response | None:
            response = await client.get("/readyz")
            return response if response.status_code == 503 else None

        response = await eventually(not_ready, timeout=30)

    assert response.json()["checks"] == {"database": True, "broker": False}
    assert response.json()["status"] == "not ready"


async def test_metrics_expose_http_requests_and_outbox_backlog(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert re.search(r'^greenzone_http_requests_total\{.*route="/healthz".*\} \d', response.text, re.M)
    assert re.search(r'^greenzone_outbox_backlog\{service="change-svc"\} \d', response.text, re.M)


async def test_openapi_describes_the_changes_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    assert "/changes" in response.json()["paths"]
