"""Webhook notifications, against a local receiver: signed, retried with backoff, never blocking the request."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from greenzone_common.devstack import free_port
from greenzone_common.testing.helpers import bearer, eventually
from release_svc.notifications.service import SIGNATURE_HEADER, retry_delay, verify

pytestmark = [pytest.mark.integration]

#: conftest.Receiver (a conftest is not importable under --import-mode=importlib)
Receiver = Any

RM = bearer("rita", "release_manager")


async def test_webhooks_are_signed_retried_and_cover_the_release_story(
    client: httpx.AsyncClient, receiver: Receiver, svc: str
) -> None:
    receiver.failures = 2  # the first two posts fail: the planned notice arrives on the third attempt
    body = {"name": "Payments Q1", "version": "1.4.2", "services": [svc], "notify": [receiver.url]}
    created = await client.post("/releases", json=body, headers=RM)
    assert created.status_code == 201
    release = created.json()
    secret = release["notify_secret"]

    await eventually(lambda: _has(receiver, "release.planned"), timeout=20)
    assert receiver.attempts == 3
    headers, raw, _ = receiver.received[0]
    assert verify(secret, raw, headers[SIGNATURE_HEADER.lower()])
    assert not verify("another secret", raw, headers[SIGNATURE_HEADER.lower()])
    payload = json.loads(raw)
    assert (payload["event"], payload["release"]["id"], payload["release"]["state"]) == (
        "release.planned",
        release["id"],
        "planned",
    )
    assert payload["delivery_id"] == headers["x-greenzone-delivery"]

    rid = release["id"]
    await client.patch(f"/releases/{rid}", json={"milestones": {"deploy": "2026-04-01T09:00:00Z"}}, headers=RM)
    now = datetime.now(UTC)
    freeze = {
        "name": "Peak",
        "start": (now + timedelta(days=1)).isoformat(),
        "end": (now + timedelta(days=2)).isoformat(),
        "environments": ["production"],
        "services": [svc],
    }
    assert (await client.post("/freezes", json=freeze, headers=RM)).status_code == 201
    other = {**freeze, "services": ["someone-else"]}
    assert (await client.post("/freezes", json=other, headers=RM)).status_code == 201  # does not concern it
    assert (
        await client.post(f"/releases/{rid}/deployments", json={"environment": "staging"}, headers=RM)
    ).status_code == 201
    rollback = {"environment": "staging", "reason": "bad config"}
    assert (await client.post(f"/releases/{rid}/rollback", json=rollback, headers=RM)).status_code == 200

    expected = [
        "release.planned",
        "release.schedule_changed",
        "release.freeze_scheduled",
        "release.deployed",
        "release.rolledback",
    ]
    await eventually(lambda: _count(receiver, len(expected)), timeout=20)
    assert receiver.kinds() == expected
    for headers, raw, _ in receiver.received:
        assert verify(secret, raw, headers[SIGNATURE_HEADER.lower()])
    freeze_payload = json.loads(receiver.received[2][1])
    assert freeze_payload["freeze"]["services"] == [svc]
    deployed = json.loads(receiver.received[3][1])
    assert (deployed["environment"], deployed["outcome"]) == ("staging", "success")


async def test_a_slow_receiver_never_blocks_the_request(
    client: httpx.AsyncClient, receiver: Receiver, svc: str
) -> None:
    receiver.delay = 3.0
    started = asyncio.get_running_loop().time()
    body = {"name": "Slow", "version": "2.0.0", "services": [svc], "notify": [receiver.url]}
    assert (await client.post("/releases", json=body, headers=RM)).status_code == 201
    assert asyncio.get_running_loop().time() - started < 1.5
    await eventually(lambda: _count(receiver, 1), timeout=20)


async def test_unreachable_receiver_is_retried_then_given_up(client: httpx.AsyncClient, svc: str, query: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    body = {"name": "Lost", "version": "3.0.0", "services": [svc], "notify": [dead]}
    assert (await client.post("/releases", json=body, headers=RM)).status_code == 201

    async def given_up() -> list[Any] | None:
        rows = await query(
            "SELECT status, attempts, last_error FROM release.notification_deliveries WHERE url = $1", dead
        )
        return rows if rows and rows[0]["status"] == "failed" else None

    [row] = await eventually(given_up, timeout=30)
    assert row["attempts"] == 6 and row["last_error"]


def test_retry_delay_doubles_and_is_capped() -> None:
    assert [retry_delay(n, 2.0).total_seconds() for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert retry_delay(30, 2.0) == timedelta(hours=1)


async def _has(receiver: Receiver, kind: str) -> bool:
    return kind in receiver.kinds()


async def _count(receiver: Receiver, n: int) -> bool:
    return len(receiver.received) >= n
