"""The change lifecycle over HTTP: every transition of API.md, approvals, segregation of duties, standard changes,
the audit history, listing, and the events each transition stages in the outbox."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import httpx
import pytest

from change_svc.changes import service
from greenzone_common.testing.helpers import bearer

from .conftest import (
    ALICE,
    BOB,
    CAB,
    CAROL,
    DAN,
    OTHER_SERVICE,
    RM,
    SERVICE,
    TICKET_SCHEMAS,
    assert_valid_ticket,
    body,
    create,
    post,
)

pytestmark = pytest.mark.integration


async def ticket_events(db: asyncpg.Connection, change_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT type, data FROM change.outbox WHERE key = $1 AND topic = 'greenzone.cdevents' ORDER BY seq", change_id
    )
    events = []
    for row in rows:
        data = json.loads(row["data"]) if isinstance(row["data"], str) else row["data"]
        assert_valid_ticket(row["type"], data)
        events.append(data)
    return events


async def outbox_types(db: asyncpg.Connection, change_id: str, topic: str = "greenzone.change") -> list[str]:
    rows = await db.fetch("SELECT type FROM change.outbox WHERE key = $1 AND topic = $2 ORDER BY seq", change_id, topic)
    return [r["type"] for r in rows]


async def test_normal_change_from_draft_to_closed(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    change = await create(client, environment="production")
    assert change["state"] == "draft"
    assert change["number"].startswith("CHG-") and len(change["number"]) == 10
    assert change["risk"]["level"] == "medium"  # normal 5 + production 20 + no test evidence 15
    assert {f["code"]: f["points"] for f in change["risk"]["factors"]} == {
        "NORMAL_CHANGE": 5,
        "PRODUCTION_ENVIRONMENT": 20,
        "NO_TEST_EVIDENCE": 15,
    }
    cid = change["id"]

    submitted = await post(client, f"/changes/{cid}/submit", ALICE)
    assert (submitted["state"], submitted["required_approvals"], submitted["auto_approved"]) == (
        "awaiting_approval",
        2,
        False,
    )
    first = await post(client, f"/changes/{cid}/approvals", BOB, {"decision": "approve", "comment": "ok"}, 201)
    assert first["state"] == "awaiting_approval"
    assert first["approval_progress"]["missing"] == 1
    second = await post(client, f"/changes/{cid}/approvals", CAROL, {"decision": "approve"}, 201)
    assert second["state"] == "approved"
    assert [(a["by"], a["decision"]) for a in second["approvals"]] == [("bob", "approve"), ("carol", "approve")]

    assert (await post(client, f"/changes/{cid}/start", ALICE))["state"] == "implementing"
    completed = await post(client, f"/changes/{cid}/complete", ALICE, {"outcome": "successful"})
    assert (completed["state"], completed["outcome"], completed["review_due"]) == ("completed", "successful", None)
    closed = await post(client, f"/changes/{cid}/review", BOB, {"summary": "went fine"})
    assert (closed["state"], closed["review_summary"], closed["reviewed_by"]) == ("closed", "went fine", "bob")

    assert await outbox_types(db, cid) == [
        "dev.greenzone.change.created.v1",
        "dev.greenzone.change.submitted.v1",
        "dev.greenzone.change.approval.recorded.v1",
        "dev.greenzone.change.approval.recorded.v1",
        "dev.greenzone.change.approved.v1",
        "dev.greenzone.change.started.v1",
        "dev.greenzone.change.completed.v1",
        "dev.greenzone.change.reviewed.v1",
        "dev.greenzone.change.closed.v1",
    ]
    # a ticket for outside tools from its creation: created, then updated by every transition, closed at the end
    assert await outbox_types(db, cid, "greenzone.cdevents") == [
        "dev.cdevents.ticket.created.0.2.0",
        *["dev.cdevents.ticket.updated.0.2.0"] * 5,  # submitted, two votes, started, completed
        "dev.cdevents.ticket.closed.0.2.0",
    ]
    tickets = await ticket_events(db, cid)
    assert tickets[0]["subject"]["content"]["creator"] == "alice"
    assert "state:draft" in tickets[0]["subject"]["content"]["labels"]
    assert [t["subject"]["content"].get("updatedBy") for t in tickets[1:]] == [
        "alice",
        "bob",
        "carol",
        "alice",
        "alice",
        "bob",
    ]
    assert tickets[-1]["subject"]["content"]["resolution"] == "completed"


async def test_ticket_cdevents_validate_against_the_cdevents_schemas(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    cancelled = await create(client)
    await post(client, f"/changes/{cancelled['id']}/submit", ALICE)
    await post(client, f"/changes/{cancelled['id']}/cancel", ALICE, {"reason": "not needed"})
    unsubmitted = await create(client)
    await post(client, f"/changes/{unsubmitted['id']}/cancel", ALICE, {"reason": "never mind"})
    # a draft is a ticket from its creation: withdrawn before it was submitted, that ticket is closed
    assert await outbox_types(db, unsubmitted["id"], "greenzone.cdevents") == [
        "dev.cdevents.ticket.created.0.2.0",
        "dev.cdevents.ticket.closed.0.2.0",
    ]
    rejected = await create(client, environment="production")  # medium: a first approval updates the ticket
    await post(client, f"/changes/{rejected['id']}/submit", ALICE)
    await post(client, f"/changes/{rejected['id']}/approvals", BOB, {"decision": "approve"}, 201)
    await post(client, f"/changes/{rejected['id']}/approvals", CAROL, {"decision": "reject"}, 201)
    template = await post(client, "/standard-changes", CAB, {"name": "Restart workers", "services": [SERVICE]}, 201)
    standard = await create(client, type="standard", template_id=template["id"])
    assert await outbox_types(db, standard["id"], "greenzone.cdevents") == ["dev.cdevents.ticket.created.0.2.0"]
    await post(client, f"/changes/{standard['id']}/submit", ALICE)

    rows = await db.fetch("SELECT key, type, data FROM change.outbox WHERE topic = 'greenzone.cdevents'")
    seen = set()
    closed = {}
    created = set()
    for row in rows:
        data = json.loads(row["data"]) if isinstance(row["data"], str) else row["data"]
        assert_valid_ticket(row["type"], data)
        assert data["subject"]["id"] == row["key"]
        seen.add(row["type"])
        if row["type"].startswith("dev.cdevents.ticket.created"):
            created.add(row["key"])
        if row["type"].startswith("dev.cdevents.ticket.closed"):
            closed[row["key"]] = data["subject"]["content"]["resolution"]
    assert seen == set(TICKET_SCHEMAS)
    assert created == {cancelled["id"], unsubmitted["id"], rejected["id"], standard["id"]}  # each exactly once
    assert len([r for r in rows if r["type"].startswith("dev.cdevents.ticket.created")]) == 4
    assert closed == {cancelled["id"]: "withdrawn", unsubmitted["id"]: "withdrawn", rejected["id"]: "rejected"}


async def test_illegal_transition_is_409_naming_the_current_state(client: httpx.AsyncClient) -> None:
    cid = (await create(client))["id"]
    response = await client.post(f"/changes/{cid}/start", headers=ALICE)

    assert response.status_code == 409
    problem = response.json()
    assert "draft" in problem["detail"]
    assert problem["state"] == "draft"
    assert problem["type"].endswith("/illegal-transition")
    complete = await client.post(f"/changes/{cid}/complete", json={"outcome": "successful"}, headers=ALICE)
    assert complete.status_code == 409
    review = await client.post(f"/changes/{cid}/review", json={"summary": "x"}, headers=ALICE)
    assert review.status_code == 409


async def test_requester_cannot_approve_own_change(client: httpx.AsyncClient) -> None:
    both = bearer("alice", "requester", "approver")
    cid = (await create(client, headers=both))["id"]
    await post(client, f"/changes/{cid}/submit", both)

    response = await client.post(f"/changes/{cid}/approvals", json={"decision": "approve"}, headers=both)

    assert response.status_code == 403
    assert response.json()["type"].endswith("/segregation-of-duties")
    assert (await client.get(f"/changes/{cid}", headers=both)).json()["approvals"] == []


async def test_second_vote_of_the_same_approver_is_409(client: httpx.AsyncClient) -> None:
    cid = (await create(client, environment="production"))["id"]
    await post(client, f"/changes/{cid}/submit", ALICE)
    await post(client, f"/changes/{cid}/approvals", BOB, {"decision": "approve"}, 201)

    again = await client.post(f"/changes/{cid}/approvals", json={"decision": "approve"}, headers=BOB)

    assert again.status_code == 409
    assert again.json()["type"].endswith("/already-decided")
    change = (await client.get(f"/changes/{cid}", headers=BOB)).json()
    assert change["state"] == "awaiting_approval"
    assert len(change["approvals"]) == 1


async def test_vote_on_a_change_not_awaiting_approval_is_409(client: httpx.AsyncClient) -> None:
    cid = (await create(client))["id"]
    response = await client.post(f"/changes/{cid}/approvals", json={"decision": "approve"}, headers=BOB)
    assert response.status_code == 409
    assert "draft" in response.json()["detail"]


async def test_rejection_ends_it(client: httpx.AsyncClient) -> None:
    cid = (await create(client, environment="production"))["id"]
    await post(client, f"/changes/{cid}/submit", ALICE)
    await post(client, f"/changes/{cid}/approvals", BOB, {"decision": "approve"}, 201)
    rejected = await post(client, f"/changes/{cid}/approvals", CAROL, {"decision": "reject", "comment": "no"}, 201)

    assert rejected["state"] == "rejected"
    late = await client.post(f"/changes/{cid}/approvals", json={"decision": "approve"}, headers=DAN)
    assert late.status_code == 409
    assert "rejected" in late.json()["detail"]


async def test_high_risk_change_needs_three_approvals_one_of_them_cab(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    # 25 commits and no window: normal 5 + production 20 + large 15 + unplanned 5 + no evidence 15 = 60 (high)
    cid = (
        await create(
            client,
            environment="production",
            commits=[f"{i:040d}" for i in range(25)],
            planned_start=None,
            planned_end=None,
        )
    )["id"]
    submitted = await post(client, f"/changes/{cid}/submit", ALICE)
    assert (submitted["risk"]["level"], submitted["required_approvals"]) == ("high", 3)
    for who in (BOB, CAROL, DAN):
        state = (await post(client, f"/changes/{cid}/approvals", who, {"decision": "approve"}, 201))["state"]
    assert state == "awaiting_approval"  # three approvers, but no cab
    approved = await post(client, f"/changes/{cid}/approvals", CAB, {"decision": "approve"}, 201)
    assert approved["state"] == "approved"
    assert approved["approval_progress"]["cab_given"] is True


async def test_emergency_change_needs_one_cab_approval_and_a_review_in_two_working_days(
    client: httpx.AsyncClient,
) -> None:
    cid = (await create(client, type="emergency", environment="production"))["id"]
    await post(client, f"/changes/{cid}/submit", ALICE)
    assert (await post(client, f"/changes/{cid}/approvals", BOB, {"decision": "approve"}, 201))[
        "state"
    ] == "awaiting_approval"
    assert (await post(client, f"/changes/{cid}/approvals", CAB, {"decision": "approve"}, 201))["state"] == "approved"
    await post(client, f"/changes/{cid}/start", ALICE)
    completed = await post(client, f"/changes/{cid}/complete", ALICE, {"outcome": "successful"})
    assert completed["review_due"] is not None
    reviews = (await client.get("/reviews", headers=ALICE)).json()
    assert [r["id"] for r in reviews] == [cid]
    assert reviews[0]["overdue"] is False
    assert (await client.get("/reviews?overdue=true", headers=ALICE)).json() == []
    closed = await post(client, f"/changes/{cid}/review", CAB, {"summary": "root cause fixed"})
    assert closed["state"] == "closed"
    assert (await client.get("/reviews", headers=ALICE)).json() == []


async def test_failed_change_needs_a_review(client: httpx.AsyncClient) -> None:
    cid = (await create(client))["id"]
    await post(client, f"/changes/{cid}/submit", ALICE)
    await post(client, f"/changes/{cid}/approvals", BOB, {"decision": "approve"}, 201)
    await post(client, f"/changes/{cid}/start", ALICE)
    failed = await post(client, f"/changes/{cid}/complete", ALICE, {"outcome": "failed"})
    assert failed["review_due"] is not None
    assert [r["id"] for r in (await client.get("/reviews", headers=ALICE)).json()] == [cid]


async def test_overdue_reviews_are_listed(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    cid = (await create(client, type="emergency"))["id"]
    await post(client, f"/changes/{cid}/submit", ALICE)
    await post(client, f"/changes/{cid}/approvals", CAB, {"decision": "approve"}, 201)
    await post(client, f"/changes/{cid}/start", ALICE)
    await post(client, f"/changes/{cid}/complete", ALICE, {"outcome": "successful"})
    await db.execute("UPDATE change.changes SET review_due = now() - interval '1 hour' WHERE id = $1", cid)

    overdue = (await client.get("/reviews?overdue=true", headers=ALICE)).json()

    assert [(r["id"], r["overdue"]) for r in overdue] == [(cid, True)]
    assert (await client.get(f"/changes/{cid}", headers=ALICE)).json()["review_overdue"] is True


@pytest.mark.parametrize("state_path", [[], ["submit"], ["submit", "approve"]])
async def test_cancel_before_implementation(client: httpx.AsyncClient, state_path: list[str]) -> None:
    cid = (await create(client))["id"]
    if "submit" in state_path:
        await post(client, f"/changes/{cid}/submit", ALICE)
    if "approve" in state_path:
        await post(client, f"/changes/{cid}/approvals", BOB, {"decision": "approve"}, 201)
    cancelled = await post(client, f"/changes/{cid}/cancel", ALICE, {"reason": "superseded"})
    assert (cancelled["state"], cancelled["cancel_reason"]) == ("cancelled", "superseded")
    again = await client.post(f"/changes/{cid}/cancel", json={"reason": "x"}, headers=ALICE)
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]


async def test_implementing_change_cannot_be_cancelled(client: httpx.AsyncClient) -> None:
    cid = (await create(client))["id"]
    await post(client, f"/changes/{cid}/submit", ALICE)
    await post(client, f"/changes/{cid}/approvals", BOB, {"decision": "approve"}, 201)
    await post(client, f"/changes/{cid}/start", ALICE)
    response = await client.post(f"/changes/{cid}/cancel", json={}, headers=ALICE)
    assert response.status_code == 409
    assert "implementing" in response.json()["detail"]


async def test_standard_change_from_a_template_is_approved_on_submit(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    template = await post(
        client, "/standard-changes", CAB, {"name": "Rotate TLS certificate", "services": [SERVICE]}, 201
    )
    listed = (await client.get("/standard-changes", headers=ALICE)).json()
    assert [t["id"] for t in listed["items"]] == [template["id"]]

    change = await create(client, type="standard", template_id=template["id"], environment="production")
    assert change["required_approvals"] == 0
    approved = await post(client, f"/changes/{change['id']}/submit", ALICE)
    assert approved["state"] == "approved"
    assert approved["auto_approved"] is False
    assert [(a["by"], a["policy"]) for a in approved["approvals"]] == [("greenzone:standard-template", True)]
    assert "dev.greenzone.change.approved.v1" in await outbox_types(db, change["id"])

    unknown = await client.post("/changes", json=body(type="standard", template_id="nope"), headers=ALICE)
    assert unknown.status_code == 422
    other = await client.post(
        "/changes", json=body(type="standard", template_id=template["id"], service=OTHER_SERVICE), headers=ALICE
    )
    assert other.status_code == 422
    duplicate = await client.post("/standard-changes", json={"name": "Rotate TLS certificate"}, headers=CAB)
    assert duplicate.status_code == 409
    assert (await client.post("/standard-changes", json={"name": "x"}, headers=ALICE)).status_code == 403


async def test_history_records_who_when_and_from_which_request(client: httpx.AsyncClient) -> None:
    cid = (await create(client))["id"]
    submitted = await client.post(
        f"/changes/{cid}/submit", headers={**ALICE, "Idempotency-Key": "submit-1", "X-Request-ID": "req-42"}
    )
    assert submitted.status_code == 200
    await post(client, f"/changes/{cid}/approvals", BOB, {"decision": "approve", "comment": "lgtm"}, 201)

    history = (await client.get(f"/changes/{cid}/history", headers=bearer("vic", "viewer"))).json()

    assert [(h["action"], h["from_state"], h["to_state"], h["actor"]) for h in history] == [
        ("created", None, "draft", "alice"),
        ("submitted", "draft", "awaiting_approval", "alice"),
        ("approved", "awaiting_approval", "approved", "bob"),
    ]
    submit = history[1]
    assert (submit["idempotency_key"], submit["request_id"], submit["method"], submit["path"]) == (
        "submit-1",
        "req-42",
        "POST",
        f"/changes/{cid}/submit",
    )
    assert history[2]["details"]["comment"] == "lgtm"
    assert all(h["at"].endswith("Z") for h in history)


async def test_history_is_append_only(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    cid = (await create(client))["id"]
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("UPDATE change.change_history SET actor = 'mallory' WHERE change_id = $1", cid)


async def test_get_by_number_and_404(client: httpx.AsyncClient) -> None:
    change = await create(client)
    by_number = (await client.get(f"/changes/{change['number']}", headers=ALICE)).json()
    assert by_number["id"] == change["id"]
    missing = await client.get("/changes/does-not-exist", headers=ALICE)
    assert missing.status_code == 404


async def test_list_changes_with_filters_and_pagination(client: httpx.AsyncClient) -> None:
    ids = [(await create(client, title=f"c{i}", service=SERVICE if i % 2 else OTHER_SERVICE))["id"] for i in range(5)]
    await post(client, f"/changes/{ids[1]}/submit", ALICE)
    emergency = (await create(client, type="emergency", environment="production"))["id"]

    mine = f"service={SERVICE}&service={OTHER_SERVICE}"
    first = (await client.get(f"/changes?limit=2&{mine}", headers=ALICE)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    seen = [c["id"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (await client.get(f"/changes?limit=2&cursor={cursor}&{mine}", headers=ALICE)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [emergency, *reversed(ids)]  # newest first, each once

    def ids_of(response: httpx.Response) -> list[str]:
        return [c["id"] for c in response.json()["items"]]

    assert ids_of(await client.get(f"/changes?service={SERVICE}", headers=ALICE)) == [emergency, ids[3], ids[1]]
    assert ids_of(await client.get(f"/changes?state=awaiting_approval&{mine}", headers=ALICE)) == [ids[1]]
    assert ids_of(await client.get(f"/changes?type=emergency&{mine}", headers=ALICE)) == [emergency]
    assert ids_of(await client.get(f"/changes?environment=production&{mine}", headers=ALICE)) == [emergency]
    both = await client.get(f"/changes?state=awaiting_approval&state=draft&service={OTHER_SERVICE}", headers=ALICE)
    assert ids_of(both) == [ids[4], ids[2], ids[0]]
    assert (await client.get("/changes?state=bogus", headers=ALICE)).status_code == 422
    assert (await client.get("/changes?limit=501", headers=ALICE)).status_code == 422


async def test_validation_failure_changes_nothing(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    response = await client.post("/changes", json=body(type="sideways"), headers=ALICE)
    assert response.status_code == 422
    assert response.json()["errors"]
    assert await db.fetchval("SELECT count(*) FROM change.changes WHERE service = $1", SERVICE) == 0
    window = await client.post(
        "/changes",
        json=body(planned_start="2026-03-02T10:00:00Z", planned_end="2026-03-02T09:00:00Z"),
        headers=ALICE,
    )
    assert window.status_code == 422


async def test_idempotent_create_returns_the_first_response(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    headers = {**RM, "Idempotency-Key": "create-1"}
    first = await client.post("/changes", json=body(), headers=headers)
    second = await client.post("/changes", json=body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert await db.fetchval("SELECT count(*) FROM change.changes WHERE service = $1", SERVICE) == 1
    other = await client.post("/changes", json=body(title="different"), headers=headers)
    assert other.status_code == 409


async def test_concurrent_decisions_each_count_once(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    """Votes racing on one change (each decided on its own read of the change) come out as if made one after the
    other: a medium-risk change takes two approvals, a third approver finds it approved already, and an approver
    voting twice at once is recorded once."""
    cid = (await create(client, environment="production"))["id"]
    await post(client, f"/changes/{cid}/submit", ALICE)
    vote = {"decision": "approve"}
    responses = await asyncio.gather(
        *(client.post(f"/changes/{cid}/approvals", json=vote, headers=h) for h in (BOB, CAROL, DAN, BOB, CAROL))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 201, 409, 409, 409], [r.text for r in responses]
    change = (await client.get(f"/changes/{cid}", headers=ALICE)).json()
    assert change["state"] == "approved"
    assert change["approval_progress"]["approvals"] == 2
    assert len(change["approvals"]) == 2 and len({a["by"] for a in change["approvals"]}) == 2
    decided = [r.json() for r in responses if r.status_code == 201]
    assert sorted(d["state"] for d in decided) == ["approved", "awaiting_approval"]
    history = (await client.get(f"/changes/{cid}/history", headers=ALICE)).json()
    assert [h["action"] for h in history] == ["created", "submitted", "vote_recorded", "approved"]
    assert [h["details"]["approvals"] for h in history[2:]] == [1, 2]
    assert await outbox_types(db, cid) == [
        "dev.greenzone.change.created.v1",
        "dev.greenzone.change.submitted.v1",
        "dev.greenzone.change.approval.recorded.v1",
        "dev.greenzone.change.approval.recorded.v1",
        "dev.greenzone.change.approved.v1",
    ]
    assert sorted(r.json()["type"].rsplit("/", 1)[-1] for r in responses if r.status_code == 409) in (
        ["already-decided", "already-decided", "illegal-transition"],
        ["already-decided", "illegal-transition", "illegal-transition"],
        ["illegal-transition", "illegal-transition", "illegal-transition"],
    )


async def test_decisions_in_flight_are_read_and_written_together(
    change_app: Any, client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """Approvals of different changes arriving together are read by one statement and written by one statement
    per batch (``DecisionBatches``), and each is recorded exactly as on its own: its approval, its state, its
    history entry and its events."""
    ids = []
    for _ in range(12):
        cid = (await create(client))["id"]
        await post(client, f"/changes/{cid}/submit", ALICE)
        ids.append(cid)
    batches = service.DecisionBatches.of(change_app.state.runtime.engine)
    before = (batches.read.stats.batches, batches.read.stats.items, batches.write.stats.batches)
    responses = await asyncio.gather(
        *(client.post(f"/changes/{cid}/approvals", json={"decision": "approve"}, headers=BOB) for cid in ids)
    )
    assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses]
    assert [r.json()["id"] for r in responses] == ids
    assert all(r.json()["state"] == "approved" for r in responses)
    reads = batches.read.stats.batches - before[0]
    assert batches.read.stats.items - before[1] == 12 and reads < 12
    assert batches.write.stats.batches - before[2] < 12
    for cid in ids:
        assert await db.fetchval("SELECT count(*) FROM change.approvals WHERE change_id = $1", cid) == 1
        history = (await client.get(f"/changes/{cid}/history", headers=ALICE)).json()
        assert [h["action"] for h in history] == ["created", "submitted", "approved"]
        assert (await outbox_types(db, cid))[-2:] == [
            "dev.greenzone.change.approval.recorded.v1",
            "dev.greenzone.change.approved.v1",
        ]
