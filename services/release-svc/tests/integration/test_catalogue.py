"""Catalogue, environments, windows and freezes over HTTP: stored, published through the outbox, guarded by roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from greenzone_common.testing.helpers import bearer

pytestmark = pytest.mark.integration

RM = bearer("rita", "release_manager")
VIEWER = bearer("vic", "viewer")

Events = Callable[[str], Awaitable[list[dict[str, Any]]]]


async def test_four_default_environments_exist_from_the_start(client: httpx.AsyncClient, outbox_events: Events) -> None:
    response = await client.get("/environments", headers=VIEWER)
    assert response.status_code == 200
    envs = [(e["name"], e["rank"], e["protected"], e["production"]) for e in response.json()["items"]]
    assert envs == [
        ("dev", 10, False, False),
        ("test", 20, False, False),
        ("staging", 30, False, False),
        ("production", 40, True, True),
    ]
    announced = await outbox_events("dev.greenzone.environment.defined.v1")
    assert [(e["name"], e["protected"], e["production"]) for e in announced] == [
        ("dev", False, False),
        ("test", False, False),
        ("staging", False, False),
        ("production", True, True),
    ]


async def test_service_registration_is_published(client: httpx.AsyncClient, outbox_events: Events) -> None:
    body = {"name": "api", "repositories": ["octo-org/api"], "artifacts": ["api"], "team": "payments"}
    created = await client.post("/services", json=body, headers=RM)
    assert created.status_code == 201, created.text
    assert created.json()["repositories"] == ["octo-org/api"]
    again = await client.post("/services", json={**body, "team": "platform"}, headers=RM)
    assert again.status_code == 200
    assert (await client.get("/services/api", headers=VIEWER)).json()["team"] == "platform"
    events = await outbox_events("dev.greenzone.service.registered.v1")
    assert [(e["name"], e["team"]) for e in events if e["name"] == "api"] == [("api", "payments"), ("api", "platform")]


async def test_catalogue_writes_need_release_manager_or_admin(client: httpx.AsyncClient) -> None:
    body = {"name": "api"}
    assert (await client.post("/services", json=body)).status_code == 401
    assert (await client.post("/services", json=body, headers=bearer("p", "pipeline"))).status_code == 403
    assert (await client.post("/services", json=body, headers=bearer("a", "admin"))).status_code == 201
    env = {"name": "qa", "rank": 15}
    assert (await client.post("/environments", json=env, headers=VIEWER)).status_code == 403
    window = {"environment": "production", "days": ["mon"], "start": "09:00", "end": "16:00", "timezone": "UTC"}
    assert (await client.post("/windows", json=window, headers=bearer("r", "requester"))).status_code == 403


async def test_environment_defined_and_redefined(client: httpx.AsyncClient, outbox_events: Events) -> None:
    created = await client.post("/environments", json={"name": "qa", "rank": 15}, headers=RM)
    assert created.status_code == 201
    redefined = await client.post("/environments", json={"name": "qa", "rank": 25, "protected": True}, headers=RM)
    assert redefined.status_code == 200
    assert redefined.json()["protected"] is True
    events = await outbox_events("dev.greenzone.environment.defined.v1")
    assert [(e["name"], e["rank"], e["protected"]) for e in events if e["name"] == "qa"] == [
        ("qa", 15, False),
        ("qa", 25, True),
    ]
    # prod / prd mean production
    assert (await client.get("/environments/prd", headers=VIEWER)).json()["name"] == "production"


async def test_window_is_validated_stored_and_published(client: httpx.AsyncClient, outbox_events: Events) -> None:
    body = {
        "environment": "prod",
        "days": ["mon", "tue", "wed", "thu"],
        "start": "09:00",
        "end": "16:00",
        "timezone": "Europe/London",
    }
    created = await client.post("/windows", json=body, headers=RM)
    assert created.status_code == 201, created.text
    window = created.json()
    assert (window["environment"], window["start"], window["end"]) == ("production", "09:00", "16:00")
    [event] = await outbox_events("dev.greenzone.window.defined.v1")
    assert event["timezone"] == "Europe/London" and event["days"] == ["mon", "tue", "wed", "thu"]

    bad_zone = await client.post("/windows", json={**body, "timezone": "Mars/Olympus"}, headers=RM)
    assert bad_zone.status_code == 422
    assert bad_zone.json()["errors"][0]["loc"] == ["body", "timezone"]
    unknown_env = await client.post("/windows", json={**body, "environment": "moon"}, headers=RM)
    assert unknown_env.status_code == 422

    deleted = await client.delete(f"/windows/{window['id']}", headers=RM)
    assert deleted.status_code == 204
    assert (await client.get("/windows", headers=VIEWER)).json()["items"] == []
    [removed] = await outbox_events("dev.greenzone.window.removed.v1")
    assert removed["window_id"] == window["id"]


async def test_freeze_scheduled_then_lifted(client: httpx.AsyncClient, outbox_events: Events) -> None:
    now = datetime.now(UTC)
    body = {
        "name": "Year end",
        "start": now.isoformat(),
        "end": (now + timedelta(days=3)).isoformat(),
        "environments": ["prod", "staging"],
        "services": [],
        "reason": "Trading peak",
    }
    created = await client.post("/freezes", json=body, headers=RM)
    assert created.status_code == 201, created.text
    freeze = created.json()
    assert freeze["environments"] == ["production", "staging"]
    assert [f["id"] for f in (await client.get("/freezes", headers=VIEWER)).json()["items"]] == [freeze["id"]]
    [scheduled] = await outbox_events("dev.greenzone.freeze.scheduled.v1")
    assert (scheduled["freeze_id"], scheduled["reason"]) == (freeze["id"], "Trading peak")

    assert (await client.delete(f"/freezes/{freeze['id']}", headers=RM)).status_code == 204
    assert (await client.delete(f"/freezes/{freeze['id']}", headers=RM)).status_code == 404
    assert (await client.get("/freezes", headers=VIEWER)).json()["items"] == []
    lifted = (await client.get(f"/freezes/{freeze['id']}", headers=VIEWER)).json()
    assert lifted["lifted_by"] == "rita"
    [event] = await outbox_events("dev.greenzone.freeze.lifted.v1")
    assert event["freeze_id"] == freeze["id"]

    backwards = await client.post("/freezes", json={**body, "end": body["start"]}, headers=RM)
    assert backwards.status_code == 422
    nowhere = await client.post("/freezes", json={**body, "environments": ["moon"]}, headers=RM)
    assert nowhere.status_code == 422


async def test_lists_are_paginated_with_a_cursor(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    for i in range(5):
        body = {
            "name": f"F{i}",
            "start": (now + timedelta(days=i)).isoformat(),
            "end": (now + timedelta(days=i + 1)).isoformat(),
            "environments": ["production"],
        }
        assert (await client.post("/freezes", json=body, headers=RM)).status_code == 201
        assert (await client.post("/services", json={"name": f"svc{i}"}, headers=RM)).status_code == 201
    for path, key in (("/freezes", "name"), ("/services", "name")):
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(path, params=params, headers=VIEWER)).json()
            seen += [item[key] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        expected = [f"F{i}" for i in range(5)] if path == "/freezes" else [f"svc{i}" for i in range(5)]
        assert [s for s in seen if s in expected] == expected and len(seen) == len(set(seen))
    bad = await client.get("/freezes", params={"cursor": "garbage!"}, headers=VIEWER)
    assert bad.status_code == 400
