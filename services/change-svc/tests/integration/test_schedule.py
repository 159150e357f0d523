"""Planning views: the schedule with conflicts, the CAB agenda, backlog ageing and the change success score."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from .conftest import ALICE, BOB, CAB, OTHER_SERVICE, SERVICE, create, post

pytestmark = pytest.mark.integration


async def test_schedule_lists_planned_changes_with_their_conflicts(client: httpx.AsyncClient) -> None:
    a = await create(
        client, environment="production", planned_start="2031-01-05T09:00:00Z", planned_end="2031-01-05T11:00:00Z"
    )
    b = await create(
        client, environment="production", planned_start="2031-01-05T10:00:00Z", planned_end="2031-01-05T12:00:00Z"
    )
    c = await create(
        client, environment="production", planned_start="2031-01-05T11:00:00Z", planned_end="2031-01-05T13:00:00Z"
    )
    other_env = await create(
        client, environment="staging", planned_start="2031-01-05T09:00:00Z", planned_end="2031-01-05T12:00:00Z"
    )
    other_service = await create(
        client,
        service=OTHER_SERVICE,
        environment="production",
        planned_start="2031-01-05T09:00:00Z",
        planned_end="2031-01-05T12:00:00Z",
    )
    cancelled = await create(
        client, environment="production", planned_start="2031-01-05T09:00:00Z", planned_end="2031-01-05T12:00:00Z"
    )
    await post(client, f"/changes/{cancelled['id']}/cancel", ALICE, {"reason": "no"})
    await create(
        client, environment="production", planned_start="2031-03-01T09:00:00Z", planned_end="2031-03-01T10:00:00Z"
    )  # outside the period

    response = await client.get("/schedule?from=2031-01-01T00:00:00Z&to=2031-02-01T00:00:00Z", headers=ALICE)
    assert response.status_code == 200
    schedule = response.json()
    assert schedule["from"] == "2031-01-01T00:00:00Z"
    conflicts = {i["id"]: sorted(x["id"] for x in i["conflicts"]) for i in schedule["items"]}

    assert conflicts == {
        a["id"]: [b["id"]],
        b["id"]: sorted([a["id"], c["id"]]),
        c["id"]: [b["id"]],
        other_env["id"]: [],
        other_service["id"]: [],
    }
    # by planned start, then by number
    assert [i["id"] for i in schedule["items"]] == [a["id"], other_env["id"], other_service["id"], b["id"], c["id"]]

    page = (
        await client.get("/schedule?from=2031-01-01T00:00:00Z&to=2031-02-01T00:00:00Z&limit=2", headers=ALICE)
    ).json()
    seen = [i["id"] for i in page["items"]]
    while page["next_cursor"]:
        page = (
            await client.get(
                f"/schedule?from=2031-01-01T00:00:00Z&to=2031-02-01T00:00:00Z&limit=2&cursor={page['next_cursor']}",
                headers=ALICE,
            )
        ).json()
        seen += [i["id"] for i in page["items"]]
    assert sorted(seen) == sorted(conflicts)
    assert len(seen) == len(set(seen))
    bad = await client.get("/schedule?from=2031-02-01T00:00:00Z&to=2031-01-01T00:00:00Z", headers=ALICE)
    assert bad.status_code == 400


async def test_cab_agenda_lists_changes_awaiting_approval_highest_risk_first(client: httpx.AsyncClient) -> None:
    low = await create(client)  # normal 5 + no evidence 15 = 20
    high = await create(
        client, environment="production", commits=[f"{i:040d}" for i in range(30)], planned_start=None, planned_end=None
    )  # 60
    medium = await create(client, environment="production")  # 40
    draft = await create(client, environment="production")
    for change in (low, high, medium):
        await post(client, f"/changes/{change['id']}/submit", ALICE)
    await post(client, f"/changes/{high['id']}/approvals", BOB, {"decision": "approve"}, 201)

    agenda = (await client.get("/cab/agenda", headers=CAB)).json()
    mine = [i for i in agenda if i["id"] in (low["id"], high["id"], medium["id"], draft["id"])]

    assert [i["id"] for i in mine] == [high["id"], medium["id"], low["id"]]
    first = mine[0]
    assert (first["risk_level"], first["approvals"], first["required_approvals"], first["cab_required"]) == (
        "high",
        1,
        3,
        True,
    )
    assert first["age_hours"] >= 0 and first["submitted_at"]


async def test_backlog_ageing_buckets_open_changes(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    fresh = await create(client)
    old = await create(client)
    older = await create(client)
    closed = await create(client)
    await post(client, f"/changes/{older['id']}/submit", ALICE)
    await post(client, f"/changes/{closed['id']}/cancel", ALICE, {})
    await db.execute("UPDATE change.changes SET created_at = now() - interval '5 days' WHERE id = $1", old["id"])
    await db.execute("UPDATE change.changes SET created_at = now() - interval '45 days' WHERE id = $1", older["id"])

    ageing = (await client.get(f"/backlog/ageing?service={SERVICE}", headers=ALICE)).json()

    assert ageing["open"] == 3
    buckets = {b["bucket"]: (b["count"], b["by_state"]) for b in ageing["buckets"]}
    assert buckets["<1d"] == (1, {"draft": 1})
    assert buckets["3-7d"] == (1, {"draft": 1})
    assert buckets[">30d"] == (1, {"awaiting_approval": 1})
    assert buckets["1-3d"] == (0, {})
    assert [o["id"] for o in ageing["oldest"]] == [older["id"], old["id"], fresh["id"]]


async def test_change_success_score_per_service(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    async def completed(outcome: str, service: str = SERVICE) -> str:
        change = await create(client, service=service)
        await post(client, f"/changes/{change['id']}/submit", ALICE)
        await post(client, f"/changes/{change['id']}/approvals", BOB, {"decision": "approve"}, 201)
        await post(client, f"/changes/{change['id']}/start", ALICE)
        await post(client, f"/changes/{change['id']}/complete", ALICE, {"outcome": outcome})
        return str(change["id"])

    await completed("successful")
    await completed("successful")
    await completed("failed")
    long_ago = await completed("failed")
    await db.execute("UPDATE change.changes SET completed_at = now() - interval '91 days' WHERE id = $1", long_ago)
    await completed("rolled_back", OTHER_SERVICE)
    await create(client)  # not completed: not counted

    scores = {s["service"]: s for s in (await client.get("/change-success", headers=ALICE)).json()}
    assert (scores[SERVICE]["completed"], scores[SERVICE]["successful"]) == (3, 2)
    assert scores[SERVICE]["score"] == pytest.approx(2 / 3)
    assert scores[OTHER_SERVICE]["score"] == 0.0
    unknown = (await client.get("/change-success?service=nobody", headers=ALICE)).json()
    assert unknown == [{"service": "nobody", "window_days": 90, "completed": 0, "successful": 0, "score": None}]
