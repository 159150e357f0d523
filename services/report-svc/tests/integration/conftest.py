"""Fixtures for report-svc's integration tests: the app on a fresh database and consumer groups of its own, and a
way to publish other services' events to the real broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from greenzone_common import kafka
from greenzone_common.contracts.base import EventData
from greenzone_common.devstack import Tansu
from greenzone_common.envelope import encode
from greenzone_common.testing.helpers import bearer, running
from report_svc.config import Settings
from report_svc.main import create_app

VIEWER = bearer("vera", "viewer")


@dataclass(frozen=True)
class Sent:
    """An event as a producer would send it: the same ``ce_id`` on a redelivery."""

    data: EventData
    ce_id: str


def sent(data: EventData, ce_id: str | None = None) -> Sent:
    return Sent(data, ce_id or str(uuid.uuid4()))


async def publish(settings: Settings, events: Sequence[Sent]) -> None:
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for e in events:
            key, value, headers = encode(
                id=e.ce_id,
                source="/greenzone/tests",
                type=e.data.event_type,
                subject=e.data.key(),
                time=datetime.now(UTC),
                data=e.data.model_dump(mode="json"),
            )
            await producer.send(e.data.topic, value=value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


@pytest.fixture
def report_settings(settings_for: Callable[..., Any], own_broker: Tansu) -> Settings:
    # A broker of the test's own: report-svc consumes every topic from the beginning, and the session broker holds
    # every other test's events (catching up on them would race the figures asserted here).
    settings: Settings = settings_for(
        Settings, kafka_bootstrap=own_broker.bootstrap, consumer_group_suffix=f".t{uuid.uuid4().hex[:8]}"
    )
    return settings


@pytest.fixture
def report_app(report_settings: Settings) -> FastAPI:
    return create_app(report_settings)


@pytest.fixture
async def report(report_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(report_app) as client:
        yield client
