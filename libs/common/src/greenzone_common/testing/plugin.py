"""Pytest fixtures: real PostgreSQL and the real broker, started once per test session on free ports.

``GREENZONE_DATABASE_URL`` / ``GREENZONE_KAFKA_BOOTSTRAP`` in the environment point the suite at an existing
PostgreSQL / Kafka instead (each test still gets its own database).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from greenzone_common.devstack import EmbeddedPostgres, Tansu
from greenzone_common.settings import CommonSettings

S = TypeVar("S", bound=CommonSettings)


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Every span of the test process (one SDK tracer provider, installed before any app starts)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": "greenzone-tests"}))
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="session", autouse=True)
def _tracing(span_exporter: InMemorySpanExporter) -> None:
    return None


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("GREENZONE_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", fast=True).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("GREENZONE_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    broker = Tansu(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log").start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Tansu]:
    """A broker of the test's own, for tests that restart or kill it."""
    broker = Tansu(log_path=tmp_path / "tansu.log").start()
    try:
        yield broker
    finally:
        broker.stop()


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh database for the test."""
    yield await create_database(postgres_admin_url, f"t_{uuid.uuid4().hex[:12]}")


def make_settings(cls: type[S], database_url: str, kafka_bootstrap: str, **overrides: Any) -> S:
    values: dict[str, Any] = {
        "env": "development",
        "database_url": database_url,
        "kafka_bootstrap": kafka_bootstrap,
        "relay_poll_interval": 0.2,
        "kafka_session_timeout_ms": 2000,
        "kafka_heartbeat_interval_ms": 500,
        "consumer_retry_backoff": 0.01,
        "log_json": True,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return cls(**values)


@pytest.fixture
def settings_for(database_url: str, kafka_bootstrap: str) -> Callable[..., Any]:
    """``settings_for(SettingsClass, **overrides)``: settings on the test's database and the session broker."""

    def build(cls: type[S], **overrides: Any) -> S:
        # database_url / kafka_bootstrap may be overridden too (a test's own broker)
        return make_settings(
            cls,
            overrides.pop("database_url", database_url),
            overrides.pop("kafka_bootstrap", kafka_bootstrap),
            **overrides,
        )

    return build
