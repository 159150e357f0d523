"""The walking skeleton: POST /changes in change-svc → outbox → relay → Kafka → report-svc's projection.

Real PostgreSQL and the real broker. The proofs of the foundation issue:
1. the event arrives and the consumer's span continues the HTTP request's trace;
2. a crash between commit and publish, or between publish and marking, loses nothing and applies nothing twice;
3. the same event delivered twice changes the projection once;
4. a malformed message lands in the DLQ with its error and the consumer goes on;
5. the broker restarted empty: ``greenzone replay`` restores every projection.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from change_svc.config import Settings as ChangeSettings
from change_svc.main import create_app as create_change_app
from greenzone_common import devstack, kafka
from greenzone_common.contracts import CHANGE_TOPIC, ChangeCreated, dlq_topic
from greenzone_common.dlq import list_dead_letters, redrive
from greenzone_common.envelope import encode
from greenzone_common.relay import Relay
from greenzone_common.testing.helpers import bearer, eventually, running
from greenzone_common.testing.plugin import make_settings
from report_svc.config import Settings as ReportSettings
from report_svc.main import create_app as create_report_app

pytestmark = pytest.mark.integration

REQUESTER = bearer("alice", "requester")


def change_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "title": "Raise API pool size",
        "type": "normal",
        "service": "api",
        "environment": "production",
        "commits": ["a" * 40],
        "version": "1.4.2",
    }
    body.update(overrides)
    return body


async def projected(dsn: str, change_id: str) -> tuple[int, int]:
    """(rows in report.changes, applied events in report.change_events) for one change."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM report.changes WHERE change_id = $1) AS views,"
            " (SELECT count(*) FROM report.change_events WHERE change_id = $1) AS events",
            change_id,
        )
        assert row is not None
        return int(row["views"]), int(row["events"])
    finally:
        await conn.close()


async def wait_projected(dsn: str, change_id: str, timeout: float = 60.0) -> tuple[int, int]:
    async def check() -> tuple[int, int] | None:
        counts = await projected(dsn, change_id)
        return counts if counts[1] >= 1 else None

    return await eventually(check, timeout=timeout)


async def create_change(client: httpx.AsyncClient, **overrides: Any) -> str:
    response = await client.post("/changes", json=change_body(**overrides), headers=REQUESTER)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def group() -> str:
    """A consumer-group suffix of the test's own, so tests sharing the session broker do not share offsets."""
    return f".t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def report_settings(database_url: str, kafka_bootstrap: str, group: str) -> ReportSettings:
    return make_settings(ReportSettings, database_url, kafka_bootstrap, consumer_group_suffix=group)


@pytest.fixture
def change_settings(database_url: str, kafka_bootstrap: str) -> ChangeSettings:
    return make_settings(ChangeSettings, database_url, kafka_bootstrap)


@pytest.fixture
def report_app(report_settings: ReportSettings) -> FastAPI:
    return create_report_app(report_settings)


@pytest.fixture
async def report(report_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(report_app) as client:
        yield client


async def test_created_change_reaches_report_projection_in_the_same_trace(
    change_settings: ChangeSettings, report: httpx.AsyncClient, database_url: str, span_exporter: Any
) -> None:
    async with running(create_change_app(change_settings)) as change:
        change_id = await create_change(change)
        assert await wait_projected(database_url, change_id) == (1, 1)

    spans = span_exporter.get_finished_spans()
    http = [s for s in spans if s.name == "POST /changes" and s.kind.name == "SERVER"]
    consumed = [
        s
        for s in spans
        if s.name == f"{CHANGE_TOPIC} process"
        and s.attributes.get("cloudevents.event_type") == ChangeCreated.event_type
    ]
    http_traces = {s.context.trace_id for s in http}
    assert any(s.context.trace_id in http_traces for s in consumed), "the consumer span must continue the HTTP trace"
    continued = next(s for s in consumed if s.context.trace_id in http_traces)
    assert continued.parent is not None


async def test_service_killed_between_commit_and_publish_delivers_after_restart(
    change_settings: ChangeSettings, report: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "GREENZONE_DATABASE_URL": database_url,
        "GREENZONE_KAFKA_BOOTSTRAP": change_settings.kafka_bootstrap,
        "GREENZONE_LOG_LEVEL": "WARNING",
    }
    port = devstack.free_port()
    base = f"http://127.0.0.1:{port}"

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as c:
                return (await c.get(f"{base}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    # The relay is held off so that the process is certainly killed after the commit and before the publish.
    proc = devstack.start_service(
        "change_svc.main", port, {**env, "GREENZONE_RELAY_ENABLED": "false"}, tmp_path / "first.log"
    )
    try:
        await eventually(ready, timeout=60)
        async with httpx.AsyncClient(base_url=base) as client:
            change_id = await create_change(client)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        devstack.stop_process(proc, signal.SIGKILL)

    conn = await asyncpg.connect(database_url)
    try:
        unpublished = await conn.fetchval("SELECT count(*) FROM change.outbox WHERE published_at IS NULL")
    finally:
        await conn.close()
    assert unpublished == 2  # change.created and the CDEvents ticket.created, neither published
    assert await projected(database_url, change_id) == (0, 0)

    proc = devstack.start_service("change_svc.main", port, env, tmp_path / "second.log")
    try:
        assert await wait_projected(database_url, change_id, timeout=60) == (1, 1)
    finally:
        devstack.stop_process(proc)


async def test_crash_after_publish_before_marking_republishes_and_applies_once(
    change_settings: ChangeSettings, report_app: FastAPI, report: httpx.AsyncClient, database_url: str
) -> None:
    held = create_change_app(change_settings.model_copy(update={"relay_enabled": False}))
    async with running(held) as change:
        change_id = await create_change(change)
        runtime = held.state.runtime
        relay = Relay(change_settings, "change", runtime.producer)
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(relay._select, 100)
            # acknowledged by the broker … and the process dies before marking
            await asyncio.gather(*await relay._enqueue(list(rows)))
        finally:
            await conn.close()
        assert await wait_projected(database_url, change_id) == (1, 1)

    # restarted: the row is still unpublished, so the relay publishes it a second time
    async with running(create_change_app(change_settings)):
        conn = await asyncpg.connect(database_url)
        try:

            async def published() -> bool:
                return bool(await conn.fetchval("SELECT count(*) = 0 FROM change.outbox WHERE published_at IS NULL"))

            await eventually(published)
        finally:
            await conn.close()
    runner = report_app.state.runtime.consumers[0]
    await eventually(lambda: _value(runner.stats.duplicates >= 1))
    assert await projected(database_url, change_id) == (1, 1)


async def _value(v: bool) -> bool:
    return v


async def _produce(bootstrap: str, messages: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]) -> None:
    settings = make_settings(ChangeSettings, "postgresql://unused/unused", bootstrap)
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for key, value, headers in messages:
            await producer.send_and_wait(CHANGE_TOPIC, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


def _change_created_message(
    change_id: str, event_id: str | None = None
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    data = ChangeCreated(
        change_id=change_id,
        number="CHG-000999",
        title="Hand-made",
        type="normal",
        service="api",
        environment="production",
        requested_by="alice",
        risk={"score": 10, "level": "low", "factors": []},
        created_at=datetime.now(UTC),
    )
    return encode(
        id=event_id or str(uuid.uuid4()),
        source="/greenzone/change-svc",
        type=ChangeCreated.event_type,
        subject=change_id,
        time=datetime.now(UTC),
        data=data.model_dump(mode="json"),
    )


async def test_same_event_delivered_twice_changes_projection_once(
    report_app: FastAPI, report: httpx.AsyncClient, database_url: str, kafka_bootstrap: str
) -> None:
    change_id = str(uuid.uuid4())
    message = _change_created_message(change_id)
    await _produce(kafka_bootstrap, [message, message])  # a redelivery within one batch
    assert await wait_projected(database_url, change_id) == (1, 1)
    await _produce(kafka_bootstrap, [message])  # and one arriving much later
    runner = report_app.state.runtime.consumers[0]
    await eventually(lambda: _value(runner.stats.duplicates >= 2))
    assert await projected(database_url, change_id) == (1, 1)


async def test_malformed_messages_go_to_the_dlq_and_the_consumer_goes_on(
    report: httpx.AsyncClient, database_url: str, kafka_bootstrap: str, group: str
) -> None:
    marker = uuid.uuid4().hex
    not_a_cloudevent = (marker.encode(), b'{"hello": "world"}', [])
    key, _, headers = _change_created_message(str(uuid.uuid4()))
    broken_contract = (key, b'{"change_id": "' + marker.encode() + b'"}', headers)
    good_id = str(uuid.uuid4())
    await _produce(kafka_bootstrap, [not_a_cloudevent, broken_contract, _change_created_message(good_id)])

    assert await wait_projected(database_url, good_id) == (1, 1)
    settings = make_settings(ChangeSettings, database_url, kafka_bootstrap)

    async def mine() -> list[Any]:
        letters = await list_dead_letters(settings, CHANGE_TOPIC)
        return [d for d in letters if d.group.endswith(group) and (marker in (d.key or "") or d.key == key.decode())]

    letters = await eventually(mine)
    assert {d.original_topic for d in letters} == {CHANGE_TOPIC}
    errors = " | ".join(d.error for d in letters)
    assert "missing header(s)" in errors
    assert "does not match its contract" in errors and "number" in errors
    assert all(d.topic == dlq_topic(CHANGE_TOPIC) and d.failed_at for d in letters)


async def test_dead_letter_redrive_reaches_the_consumer_again(
    report: httpx.AsyncClient, database_url: str, kafka_bootstrap: str, own_broker: devstack.Tansu
) -> None:
    settings = make_settings(ChangeSettings, database_url, own_broker.bootstrap)
    await kafka.ensure_topics(settings, kafka.with_dlqs([CHANGE_TOPIC]))
    change_id = str(uuid.uuid4())
    key, value, headers = _change_created_message(change_id)
    failed = [*headers, ("dlq_error", b"database was down"), ("dlq_topic", CHANGE_TOPIC.encode())]
    producer = kafka.producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(dlq_topic(CHANGE_TOPIC), value=value, key=key, headers=failed)
    finally:
        await producer.stop()
    assert [d.redriven for d in await list_dead_letters(settings, CHANGE_TOPIC)] == [False]
    assert await redrive(settings, CHANGE_TOPIC) == 1
    assert await redrive(settings, CHANGE_TOPIC) == 0  # each dead letter is re-driven once
    assert [d.redriven for d in await list_dead_letters(settings, CHANGE_TOPIC)] == [True]

    report_settings = make_settings(ReportSettings, database_url, own_broker.bootstrap)
    async with running(create_report_app(report_settings)):
        assert await wait_projected(database_url, change_id) == (1, 1)


async def test_broker_restarted_empty_replay_restores_projections(
    database_url: str, own_broker: devstack.Tansu
) -> None:
    change_settings = make_settings(ChangeSettings, database_url, own_broker.bootstrap)
    report_settings = make_settings(ReportSettings, database_url, own_broker.bootstrap)
    started = datetime.now(UTC)
    async with running(create_change_app(change_settings)) as change:
        async with running(create_report_app(report_settings)):
            consumed = [await create_change(change, title=f"before {i}") for i in range(3)]
            for change_id in consumed:
                await wait_projected(database_url, change_id)
        # report-svc is down: these are published but nobody consumes them …
        pending = [await create_change(change, title=f"while down {i}") for i in range(2)]

        async def all_published() -> bool:
            conn = await asyncpg.connect(database_url)
            try:
                return bool(await conn.fetchval("SELECT count(*) = 0 FROM change.outbox WHERE published_at IS NULL"))
            finally:
                await conn.close()

        await eventually(all_published)
        # … and the broker dies with them (Tansu's memory engine keeps nothing)
        own_broker.restart_empty()

        async with running(create_report_app(report_settings)):
            cli = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "greenzone"),
                *("replay", "--service", "change-svc", "--since", started.isoformat(), "--json"),
                env={**os.environ, "GREENZONE_DATABASE_URL": database_url},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await cli.communicate()
            assert cli.returncode == 0, err.decode()
            assert json.loads(out)["events"] == 10  # five changes: change.created and ticket.created each
            for change_id in consumed + pending:
                assert await wait_projected(database_url, change_id, timeout=30) == (1, 1)
