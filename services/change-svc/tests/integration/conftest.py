"""Fixtures for change-svc's integration tests: the app on the test's own database and the session broker."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from referencing import Registry, Resource

from change_svc.config import Settings
from change_svc.main import create_app
from greenzone_common.testing.conformance import conformance_dir
from greenzone_common.testing.helpers import bearer, running

ALICE = bearer("alice", "requester")
BOB = bearer("bob", "approver")
CAROL = bearer("carol", "approver")
DAN = bearer("dan", "approver")
CAB = bearer("erin", "cab")
RM = bearer("rita", "release_manager")
#: service names of this test process: events other suites publish on the session broker never match them
SERVICE = f"api-{uuid.uuid4().hex[:8]}"
OTHER_SERVICE = f"web-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def change_settings(settings_for: Callable[..., Any]) -> Settings:
    # a consumer group of the test's own: tests sharing the session broker never share offsets
    settings: Settings = settings_for(Settings, consumer_group_suffix=f".t{uuid.uuid4().hex[:8]}")
    return settings


@pytest.fixture
def change_app(change_settings: Settings) -> FastAPI:
    return create_app(change_settings)


@pytest.fixture
async def client(change_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(change_app) as c:
        yield c


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


def body(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": "Raise API pool size",
        "type": "normal",
        "service": SERVICE,
        "environment": "staging",
        "planned_start": "2026-03-02T09:00:00Z",
        "planned_end": "2026-03-02T10:00:00Z",
        "commits": ["a" * 40],
        "version": "1.4.2",
    }
    values.update(overrides)
    return values


async def create(client: httpx.AsyncClient, headers: dict[str, str] = ALICE, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/changes", json=body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def post(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], json: Any = None, status: int = 200
) -> dict[str, Any]:
    response = await client.post(path, json=json if json is not None else {}, headers=headers)
    assert response.status_code == status, response.text
    return dict(response.json())


CDEVENTS_SCHEMAS = conformance_dir() / "cdevents" / "v0.5.1" / "schemas"
TICKET_SCHEMAS = {
    "dev.cdevents.ticket.created.0.2.0": "ticketcreated.json",
    "dev.cdevents.ticket.updated.0.2.0": "ticketupdated.json",
    "dev.cdevents.ticket.closed.0.2.0": "ticketclosed.json",
}


@functools.cache
def _ticket_validator(schema_file: str) -> jsonschema.Draft202012Validator:
    # the link schemas, under the ids the event schemas refer to them by
    links = [json.loads(p.read_text()) for p in (CDEVENTS_SCHEMAS / "links").glob("*.json")]
    registry: Registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in links)
    schema = json.loads((CDEVENTS_SCHEMAS / schema_file).read_text())
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def assert_valid_ticket(ce_type: str, data: dict[str, Any]) -> None:
    """A ticket CDEvent staged by change-svc validates against its CDEvents v0.5.1 schema and names its type."""
    assert data["context"]["type"] == ce_type
    _ticket_validator(TICKET_SCHEMAS[ce_type]).validate(data)
