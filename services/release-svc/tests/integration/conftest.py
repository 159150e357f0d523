"""Fixtures of release-svc's integration tests: the app on the test's database and the session broker, a
publisher of other services' events, and a way to read what the service wrote."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from greenzone_common import kafka
from greenzone_common.contracts.base import EventData
from greenzone_common.devstack import free_port
from greenzone_common.envelope import encode
from greenzone_common.testing.helpers import eventually, running
from release_svc.config import Settings
from release_svc.main import create_app

Publish = Callable[..., Awaitable[str]]
Query = Callable[..., Awaitable[list[asyncpg.Record]]]


@pytest.fixture
def release_settings(settings_for: Callable[..., Any]) -> Settings:
    settings: Settings = settings_for(
        Settings,
        consumer_group_suffix=f".t{uuid.uuid4().hex[:8]}",
        notify_poll_interval=0.05,
        notify_backoff=0.05,
        els_check_interval=0.2,
    )
    return settings


@pytest.fixture
def release_app(release_settings: Settings) -> FastAPI:
    return create_app(release_settings)


@pytest.fixture
async def client(release_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(release_app) as c:
        yield c


@pytest.fixture
async def consumers_ready(release_app: FastAPI, client: httpx.AsyncClient) -> None:
    """Wait until every consumer group of the app holds its partitions (events published after are seen)."""
    for runner in release_app.state.runtime.consumers:
        await runner.ready.wait()


@pytest.fixture
async def publish(release_settings: Settings) -> AsyncIterator[Publish]:
    """Publish an event as its producing service would (binary CloudEvent on its topic, keyed by its aggregate)."""
    producer = kafka.producer(release_settings)
    await producer.start()

    async def send(data: EventData, *, source: str = "/greenzone/test", event_id: str | None = None) -> str:
        ce_id = event_id or str(uuid.uuid4())
        key, value, headers = encode(
            id=ce_id,
            source=source,
            type=data.event_type,
            subject=data.key(),
            time=datetime.now(UTC),
            data=data.model_dump(mode="json"),
        )
        await producer.send_and_wait(data.topic, value=value, key=key, headers=headers)
        return ce_id

    try:
        yield send
    finally:
        await producer.stop()


@pytest.fixture
async def query(database_url: str) -> Query:
    async def run(sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return run


@pytest.fixture
def outbox_events(query: Query) -> Callable[[str], Awaitable[list[dict[str, Any]]]]:
    """The data of every event of one type the service staged in its outbox, oldest first."""

    async def events(event_type: str) -> list[dict[str, Any]]:
        import json

        rows = await query("SELECT data FROM release.outbox WHERE type = $1 ORDER BY seq", event_type)
        return [json.loads(r["data"]) if isinstance(r["data"], str) else r["data"] for r in rows]

    return events


@pytest.fixture
def svc() -> str:
    """A service name of the test's own: the session broker keeps earlier tests' events, and a fresh consumer
    group reads them all, so tests never share a service name (or a change id)."""
    return f"api-{uuid.uuid4().hex[:8]}"


@dataclass
class Receiver:
    """A webhook receiver: fails the first ``failures`` posts with 503, can be slow, records what it got."""

    url: str
    failures: int = 0
    delay: float = 0.0
    received: list[tuple[dict[str, str], bytes, datetime]] = field(default_factory=list)
    attempts: int = 0

    def kinds(self) -> list[str]:
        return [headers["x-greenzone-event"] for headers, _, _ in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}/hook")
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        state.attempts += 1
        body = await request.body()
        if state.delay:
            await asyncio.sleep(state.delay)
        if state.failures > 0:
            state.failures -= 1
            return Response(status_code=503)
        state.received.append((dict(request.headers), body, datetime.now(UTC)))
        return Response(status_code=204)

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())

    async def up() -> bool:
        return bool(server.started)

    await eventually(up, timeout=10)
    try:
        yield state
    finally:
        server.should_exit = True
        await task
