"""Role by endpoint: every endpoint answers 401 without a valid token, 403 to a role it does not admit and 2xx to
every role it admits (each admitted call is made on a change in the state the call needs)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from greenzone_common.auth import ROLES
from greenzone_common.testing.helpers import bearer

from .conftest import body, post

pytestmark = pytest.mark.integration

OWNER = bearer("owner", "requester")
PREP_APPROVER = bearer("prep-approver", "approver")
ANYONE = set(ROLES)
REQUESTERS = {"requester", "release_manager", "pipeline", "admin"}


async def in_state(client: httpx.AsyncClient, state: str) -> str:
    """A change requested by ``owner`` brought to ``state`` (a low-risk normal change: one approval)."""
    change = await post(client, "/changes", OWNER, body(), 201)
    cid = change["id"]
    steps = ["draft", "awaiting_approval", "approved", "implementing", "completed"]
    for step in steps[1 : steps.index(state) + 1]:
        if step == "awaiting_approval":
            await post(client, f"/changes/{cid}/submit", OWNER)
        elif step == "approved":
            await post(client, f"/changes/{cid}/approvals", PREP_APPROVER, {"decision": "approve"}, 201)
        elif step == "implementing":
            await post(client, f"/changes/{cid}/start", OWNER)
        elif step == "completed":
            await post(client, f"/changes/{cid}/complete", OWNER, {"outcome": "failed"})
    return str(cid)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {id} is replaced by a change in ``state``
    roles: set[str]
    state: str | None = None
    json: dict[str, Any] | None = None


ENDPOINTS = [
    Endpoint("POST", "/changes", REQUESTERS, json=body()),
    Endpoint("GET", "/changes", ANYONE),
    Endpoint("GET", "/changes/{id}", ANYONE, "draft"),
    Endpoint("GET", "/changes/{id}/history", ANYONE, "draft"),
    Endpoint("POST", "/changes/{id}/submit", REQUESTERS, "draft"),
    Endpoint("POST", "/changes/{id}/approvals", {"approver", "cab"}, "awaiting_approval", {"decision": "approve"}),
    Endpoint("POST", "/changes/{id}/start", REQUESTERS, "approved"),
    Endpoint("POST", "/changes/{id}/complete", REQUESTERS, "implementing", {"outcome": "successful"}),
    Endpoint("POST", "/changes/{id}/cancel", {"requester", "release_manager", "admin"}, "draft", {"reason": "x"}),
    Endpoint(
        "POST",
        "/changes/{id}/review",
        {"requester", "approver", "cab", "release_manager", "admin"},
        "completed",
        {"summary": "PIR"},
    ),
    Endpoint("GET", "/schedule", ANYONE),
    Endpoint("GET", "/cab/agenda", ANYONE),
    Endpoint("GET", "/reviews", ANYONE),
    Endpoint("GET", "/backlog/ageing", ANYONE),
    Endpoint("GET", "/change-success", ANYONE),
    Endpoint("GET", "/standard-changes", ANYONE),
    Endpoint("POST", "/standard-changes", {"cab", "release_manager", "admin"}, json=None),
]


def call(client: httpx.AsyncClient, e: Endpoint, path: str, headers: dict[str, str]) -> Awaitable[httpx.Response]:
    if e.method == "GET":
        return client.get(path, headers=headers)
    return client.post(path, json=e.json if e.json is not None else {}, headers=headers)


async def test_every_endpoint_admits_exactly_its_roles(client: httpx.AsyncClient) -> None:
    outcomes: dict[tuple[str, str, str], int] = {}
    expected: dict[tuple[str, str, str], int | str] = {}
    template_names = iter(range(1000))
    for e in ENDPOINTS:
        shared = await in_state(client, "draft")
        for who, headers in [("no token", {}), ("bad token", {"Authorization": "Bearer not-a-jwt"})]:
            response = await call(client, e, e.path.replace("{id}", shared), headers)
            outcomes[(e.method, e.path, who)] = response.status_code
            expected[(e.method, e.path, who)] = 401
        for role in ROLES:
            headers = bearer(f"user-{role}", role)
            path = e.path
            if "{id}" in path:
                path = path.replace("{id}", await in_state(client, e.state or "draft") if role in e.roles else shared)
            if e.path == "/standard-changes" and e.method == "POST":  # a name of its own each time (unique)
                response = await client.post(path, json={"name": f"template {next(template_names)}"}, headers=headers)
            else:
                response = await call(client, e, path, headers)
            outcomes[(e.method, e.path, role)] = response.status_code
            expected[(e.method, e.path, role)] = "2xx" if role in e.roles else 403
    mismatches = {
        k: (outcomes[k], want)
        for k, want in expected.items()
        if not (200 <= outcomes[k] < 300 if want == "2xx" else outcomes[k] == want)
    }
    assert mismatches == {}
    assert len(outcomes) == len(ENDPOINTS) * (len(ROLES) + 2)
