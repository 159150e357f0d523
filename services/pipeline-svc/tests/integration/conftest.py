from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from greenzone_common.testing.helpers import bearer, running
from pipeline_svc.config import Settings
from pipeline_svc.main import create_app
from pipeline_svc.sources.signatures import github_signature

GITHUB_SECRET = "test-github-secret"
GITLAB_TOKEN = "test-gitlab-token"
PIPELINE = bearer("ci-bot", "pipeline")
VIEWER = bearer("vera", "viewer")


@pytest.fixture
def settings(settings_for: Callable[..., Settings]) -> Settings:
    return settings_for(
        Settings,
        github_webhook_secret=GITHUB_SECRET,
        gitlab_webhook_token=GITLAB_TOKEN,
        consumer_group_suffix=f".t{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as c:
        yield c


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


def github_headers(event: str, body: bytes, delivery: str | None = None, secret: str = GITHUB_SECRET) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid4()),
        "x-hub-signature-256": github_signature(secret, body),
    }


def gitlab_headers(event: str, delivery: str | None = None, token: str = GITLAB_TOKEN) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-gitlab-event": event,
        "x-gitlab-event-uuid": delivery or str(uuid.uuid4()),
        "x-gitlab-token": token,
    }


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def binary_headers(cdevent: dict[str, Any], specversion: str = "1.0") -> dict[str, str]:
    """A CDEvent's context as binary-mode CloudEvent headers (the body is the CDEvent), with a pipeline token."""
    ctx = cdevent["context"]
    return {
        **PIPELINE,
        "content-type": "application/json",
        "ce-specversion": specversion,
        "ce-id": ctx["id"],
        "ce-source": ctx["source"],
        "ce-type": ctx["type"],
        "ce-subject": cdevent["subject"]["id"],
    }


def structured(cdevent: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A CDEvent as a structured-mode CloudEvent, as the CDEvents binding says."""
    ctx = cdevent["context"]
    event = {
        "specversion": "1.0",
        "id": ctx["id"],
        "source": ctx["source"],
        "type": ctx["type"],
        "subject": cdevent["subject"]["id"],
        "time": ctx["timestamp"],
        "datacontenttype": "application/json",
        "data": cdevent,
    }
    event.update(overrides)
    return event


async def count(db: asyncpg.Connection, table: str, where: str = "true", *args: Any) -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM pipeline.{table} WHERE {where}", *args))


async def outbox_types(db: asyncpg.Connection) -> list[str]:
    return [r["type"] for r in await db.fetch("SELECT type FROM pipeline.outbox ORDER BY seq")]
