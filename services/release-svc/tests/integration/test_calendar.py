"""The calendar as JSON and as iCalendar; the .ics is parsed back as a calendar client would."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar

from greenzone_common.contracts.change import ChangeCreated
from greenzone_common.contracts.common import Risk
from greenzone_common.testing.helpers import bearer, eventually

pytestmark = [pytest.mark.integration]

RM = bearer("rita", "release_manager")
VIEWER = bearer("vic", "viewer")
RANGE = {"from": "2026-03-23T00:00:00Z", "to": "2026-04-06T00:00:00Z"}  # spans London's spring-forward (29 Mar)


async def populate(client: httpx.AsyncClient, svc: str) -> dict[str, Any]:
    window = {
        "environment": "production",
        "days": ["mon", "tue", "wed", "thu"],
        "start": "09:00",
        "end": "16:00",
        "timezone": "Europe/London",
    }
    assert (await client.post("/windows", json=window, headers=RM)).status_code == 201
    freeze = {
        "name": "Easter",
        "start": "2026-04-02T17:00:00Z",
        "end": "2026-04-06T08:00:00Z",
        "environments": ["production"],
        "reason": "bank holidays",
    }
    assert (await client.post("/freezes", json=freeze, headers=RM)).status_code == 201
    release = {
        "name": "Payments Q1",
        "version": "1.4.2",
        "services": [svc],
        "milestones": {
            "build": "2026-03-24T09:00:00Z",
            "deploy": "2026-03-31T09:00:00Z",
            "els_end": "2026-04-07T09:00:00Z",
        },
    }
    created = await client.post("/releases", json=release, headers=RM)
    assert created.status_code == 201
    body: dict[str, Any] = created.json()
    return body


@pytest.mark.usefixtures("consumers_ready")
async def test_calendar_json_lists_everything_in_the_range(
    client: httpx.AsyncClient,
    svc: str,
    publish: Callable[..., Awaitable[str]],
    query: Callable[..., Awaitable[list[asyncpg.Record]]],
) -> None:
    release = await populate(client, svc)
    change_id = f"chg-{svc}"
    await publish(
        ChangeCreated(
            change_id=change_id,
            number="CHG-000009",
            type="normal",
            service=svc,
            environment="production",
            title="Raise pool",
            requested_by="alice",
            risk=Risk(score=5, level="low"),
            planned_start=datetime(2026, 3, 25, 10, tzinfo=UTC),
            planned_end=datetime(2026, 3, 25, 11, tzinfo=UTC),
            created_at=datetime.now(UTC),
        )
    )

    async def seen() -> bool:
        return bool(await query("SELECT 1 FROM release.changes WHERE change_id = $1", change_id))

    await eventually(seen, timeout=30)
    response = await client.get("/calendar", params=RANGE, headers=VIEWER)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    windows = [(i["start"], i["end"]) for i in items if i["kind"] == "window"]
    assert windows == [
        ("2026-03-23T09:00:00Z", "2026-03-23T16:00:00Z"),  # GMT
        ("2026-03-24T09:00:00Z", "2026-03-24T16:00:00Z"),
        ("2026-03-25T09:00:00Z", "2026-03-25T16:00:00Z"),
        ("2026-03-26T09:00:00Z", "2026-03-26T16:00:00Z"),
        ("2026-03-30T08:00:00Z", "2026-03-30T15:00:00Z"),  # BST
        ("2026-03-31T08:00:00Z", "2026-03-31T15:00:00Z"),
        ("2026-04-01T08:00:00Z", "2026-04-01T15:00:00Z"),
        ("2026-04-02T08:00:00Z", "2026-04-02T15:00:00Z"),
    ]
    milestones = [i["id"] for i in items if i["kind"] == "milestone"]
    assert milestones == [f"{release['id']}:build", f"{release['id']}:deploy"]  # els_end is after the range
    [freeze] = [i for i in items if i["kind"] == "freeze"]
    assert (freeze["title"], freeze["detail"]) == ("Freeze: Easter", "bank holidays")
    changes = [i for i in items if i["kind"] == "change" and i["id"] == change_id]
    assert [(c["title"], c["start"]) for c in changes] == [("CHG-000009: Raise pool", "2026-03-25T10:00:00Z")]
    assert [i["start"] for i in items] == sorted(i["start"] for i in items)

    bad = await client.get(
        "/calendar", params={"from": "2026-04-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, headers=VIEWER
    )
    assert bad.status_code == 422
    assert (await client.get("/calendar")).status_code == 401


async def test_ics_parses_back_with_recurring_windows_across_dst(client: httpx.AsyncClient, svc: str) -> None:
    release = await populate(client, svc)
    response = await client.get("/calendar.ics", params=RANGE, headers=VIEWER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    cal = Calendar.from_ical(response.content)
    assert str(cal["version"]) == "2.0" and "Greenzone" in str(cal["prodid"])
    assert [str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]
    events = {str(e["uid"]): e for e in cal.walk("VEVENT")}
    assert all("dtstamp" in e for e in events.values())

    [window] = [e for uid, e in events.items() if uid.startswith("window-")]
    assert window["rrule"]["FREQ"] == ["WEEKLY"] and window["rrule"]["BYDAY"] == ["MO", "TU", "WE", "TH"]
    start = window.decoded("dtstart")
    assert str(start.tzinfo) == "Europe/London" and (start.hour, start.minute) == (9, 0)
    rule = rrulestr(window["rrule"].to_ical().decode(), dtstart=start)
    opens = [
        o.astimezone(UTC) for o in rule.between(datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC))
    ]
    assert opens[0] == datetime(2026, 3, 23, 9, tzinfo=UTC) and opens[-1] == datetime(2026, 4, 2, 8, tzinfo=UTC)

    assert events[f"milestone-{release['id']}:deploy@greenzone.release-svc"].decoded("dtstart") == datetime(
        2026, 3, 31, 9, tzinfo=UTC
    )
    [freeze] = [e for e in events.values() if str(e["summary"]) == "Freeze: Easter"]
    assert freeze.decoded("dtend") == datetime(2026, 4, 6, 8, tzinfo=UTC)
    assert str(freeze["description"]) == "bank holidays"
