"""Webhook notifications, against a local receiver: signed, retried with backoff, never blocking the request, and
only to destinations the notification policy allows (checked when planned and again at delivery)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from greenzone_common.devstack import free_port
from greenzone_common.testing.helpers import bearer, eventually, running
from release_svc.config import Settings
from release_svc.main import create_app
from release_svc.notifications.policy import IPAddress
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


# --- where webhooks may go (server-side request forgery) ----------------------------------------------------------


def fixed_resolver(answers: dict[str, list[list[str]]]) -> Callable[[str, int], Awaitable[list[IPAddress]]]:
    """A stand-in for DNS: each name answers its lists of addresses in turn (the last one from then on)."""
    calls: dict[str, int] = {}

    async def resolve(host: str, port: int) -> list[IPAddress]:
        n = calls.get(host, 0)
        calls[host] = n + 1
        if host not in answers:
            raise OSError(f"unknown host {host}")
        replies = answers[host]
        return [ipaddress.ip_address(a) for a in replies[min(n, len(replies) - 1)]]

    return resolve


@asynccontextmanager
async def app_with(
    settings_for: Callable[..., Any], resolver: Callable[[str, int], Awaitable[list[IPAddress]]], **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = settings_for(
        Settings,
        consumer_group_suffix=f".t{uuid.uuid4().hex[:8]}",
        notify_poll_interval=0.05,
        notify_backoff=0.05,
        **overrides,
    )
    app = create_app(settings)
    app.state.notify_guard = replace(app.state.notify_guard, resolver=resolver)
    async with running(app) as client:
        yield app, client


async def test_notify_urls_that_are_not_http_are_refused_naming_the_field(
    client: httpx.AsyncClient, svc: str, query: Any
) -> None:
    for i, bad in enumerate(["ftp://hooks.example.com/x", "file:///etc/passwd", "gopher://hooks.example.com/_x"]):
        notify = ["http://127.0.0.1:9/ok"] * i + [bad]
        response = await client.post(
            "/releases", json={"name": "R", "version": "1.0.0", "services": [svc], "notify": notify}, headers=RM
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["loc"] for e in response.json()["errors"]] == [["body", "notify", i]]
    credentials = await client.post(
        "/releases",
        json={"name": "R", "version": "1.0.0", "services": [svc], "notify": ["https://u:p@hooks.example.com/"]},
        headers=RM,
    )
    assert credentials.status_code == 422
    [error] = credentials.json()["errors"]
    assert error["loc"] == ["body", "notify", 0] and "credentials" in error["msg"]
    assert (await query("SELECT count(*) AS n FROM release.releases"))[0]["n"] == 0


async def test_metadata_endpoints_are_refused_even_in_development(client: httpx.AsyncClient, svc: str) -> None:
    for url in ["http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/computeMetadata/v1/"]:
        response = await client.post(
            "/releases", json={"name": "R", "version": "1.0.0", "services": [svc], "notify": [url]}, headers=RM
        )
        assert response.status_code == 422, url
        assert "metadata" in response.json()["errors"][0]["msg"]


async def test_private_destinations_are_refused_where_they_are_not_allowed(
    settings_for: Callable[..., Any], svc: str, receiver: Receiver, query: Any
) -> None:
    resolver = fixed_resolver({"intranet.example": [["10.1.2.3"]], "split.example": [["93.184.216.34", "127.0.0.1"]]})
    async with app_with(settings_for, resolver, notify_allow_private=False) as (_, client):
        refused = {
            receiver.url: "loopback",
            "http://[::1]:8080/hook": "loopback",
            "http://10.0.0.5/hook": "private",
            "http://192.168.1.10/hook": "private",
            "http://169.254.10.20/hook": "link-local",
            "http://intranet.example/hook": "intranet.example (10.1.2.3) is a private address",
            "http://split.example/hook": "loopback",  # every address the name gives must be public
            "http://nowhere.example/hook": "does not resolve",
        }
        for url, why in refused.items():
            response = await client.post(
                "/releases", json={"name": "R", "version": "1.0.0", "services": [svc], "notify": [url]}, headers=RM
            )
            assert response.status_code == 422, (url, response.text)
            [error] = response.json()["errors"]
            assert error["loc"] == ["body", "notify", 0] and why in error["msg"], (url, error)
        assert (await query("SELECT count(*) AS n FROM release.releases"))[0]["n"] == 0
    assert receiver.attempts == 0


async def test_allowed_host_is_delivered_to_the_address_that_was_vetted(
    settings_for: Callable[..., Any], svc: str, receiver: Receiver
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    resolver = fixed_resolver({"hooks.internal": [["127.0.0.1"]]})
    async with app_with(
        settings_for, resolver, notify_allow_private=False, notify_allowed_hosts=["hooks.internal"]
    ) as (_, client):
        url = f"http://hooks.internal:{port}/hook"
        body = {"name": "R", "version": "1.0.0", "services": [svc], "notify": [url]}
        assert (await client.post("/releases", json=body, headers=RM)).status_code == 201
        await eventually(lambda: _count(receiver, 1), timeout=20)
    headers, _, _ = receiver.received[0]
    # the connection went to the vetted address (the name exists only in the test's resolver); Host is the URL's
    assert headers["host"] == f"hooks.internal:{port}"
    assert headers["x-greenzone-event"] == "release.planned"


async def test_delivery_checks_the_address_again_and_sends_nothing_when_it_became_internal(
    settings_for: Callable[..., Any], svc: str, receiver: Receiver, query: Any
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    # public when the release is planned, loopback by the time the webhook is sent (DNS rebinding)
    resolver = fixed_resolver({"hooks.example": [["93.184.216.34"], ["127.0.0.1"]]})
    async with app_with(settings_for, resolver, notify_allow_private=False) as (_, client):
        url = f"http://hooks.example:{port}/hook"
        body = {"name": "R", "version": "1.0.0", "services": [svc], "notify": [url]}
        assert (await client.post("/releases", json=body, headers=RM)).status_code == 201

        async def refused() -> list[Any] | None:
            rows = await query(
                "SELECT status, attempts, last_error FROM release.notification_deliveries WHERE url = $1", url
            )
            return rows if rows and rows[0]["attempts"] >= 2 else None

        [row] = await eventually(refused, timeout=20)
    assert row["last_error"].startswith("refused:") and "loopback" in row["last_error"]
    assert row["status"] in ("pending", "failed")
    assert receiver.attempts == 0  # nothing ever reached the internal address
