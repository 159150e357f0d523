"""Property-based tests over random sequences of commands, against the running service (HTTP, PostgreSQL, outbox).

Whatever the sequence: no illegal transition is ever accepted (API.md's state machine, spelled out here on its
own), the approvals never exceed what distinct approvers other than the requester gave, a rejected change never
becomes approved, the requester's vote is always refused and a second vote always conflicts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenzone_common.testing.helpers import bearer

from .conftest import body

pytestmark = pytest.mark.integration

REQUESTER = "alice"
PEOPLE = {
    "alice": bearer("alice", "requester", "approver"),  # may vote in general, never on her own change
    "bob": bearer("bob", "approver"),
    "carol": bearer("carol", "approver"),
    "dan": bearer("dan", "approver"),
    "erin": bearer("erin", "cab"),
    "rita": bearer("rita", "release_manager"),
}

# API.md's lifecycle, independent of the implementation's table: command → {from state: possible targets}
LEGAL: dict[str, dict[str, set[str]]] = {
    "submit": {"draft": {"awaiting_approval", "approved"}},
    "vote": {"awaiting_approval": {"awaiting_approval", "approved", "rejected"}},
    "start": {"approved": {"implementing"}},
    "complete": {"implementing": {"completed"}},
    "cancel": {s: {"cancelled"} for s in ("draft", "awaiting_approval", "approved")},
    "review": {"completed": {"closed"}},
}

commands = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from(["alice", "rita"])),
        st.tuples(st.just("vote"), st.sampled_from(sorted(PEOPLE)), st.sampled_from(["approve", "approve", "reject"])),
        st.tuples(st.just("start"), st.just("rita")),
        st.tuples(st.just("complete"), st.sampled_from(["successful", "failed", "rolled_back"])),
        st.tuples(st.just("cancel"), st.just("alice")),
        st.tuples(st.just("review"), st.just("bob")),
    ),
    min_size=1,
    max_size=12,
)
kinds = st.sampled_from(
    [
        {"type": "normal", "environment": "staging"},  # low: one approval
        {"type": "normal", "environment": "production"},  # medium: two
        {
            "type": "normal",
            "environment": "production",
            "planned_start": None,
            "planned_end": None,
            "commits": [f"{i:040d}" for i in range(25)],
        },  # high: three with a cab
        {"type": "emergency", "environment": "production"},  # one cab
    ]
)


async def send(client: httpx.AsyncClient, cid: str, command: tuple[str, ...]) -> httpx.Response:
    name = command[0]
    if name == "submit":
        return await client.post(f"/changes/{cid}/submit", headers=PEOPLE[command[1]])
    if name == "vote":
        return await client.post(f"/changes/{cid}/approvals", json={"decision": command[2]}, headers=PEOPLE[command[1]])
    if name == "start":
        return await client.post(f"/changes/{cid}/start", headers=PEOPLE["rita"])
    if name == "complete":
        return await client.post(f"/changes/{cid}/complete", json={"outcome": command[1]}, headers=PEOPLE["rita"])
    if name == "cancel":
        return await client.post(f"/changes/{cid}/cancel", json={"reason": "r"}, headers=PEOPLE["alice"])
    return await client.post(f"/changes/{cid}/review", json={"summary": "s"}, headers=PEOPLE["bob"])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kind=kinds, sequence=commands)
async def test_random_command_sequences_keep_the_invariants(
    client: httpx.AsyncClient, kind: dict[str, Any], sequence: list[tuple[str, ...]]
) -> None:
    created = await client.post("/changes", json=body(**kind), headers=PEOPLE[REQUESTER])
    assert created.status_code == 201
    change = created.json()
    cid, state = change["id"], change["state"]
    voted: set[str] = set()  # distinct approvers (not the requester) whose vote was accepted
    was_rejected = False
    for command in sequence:
        response = await send(client, cid, command)
        name = command[0]
        if name == "vote" and command[1] == REQUESTER:
            assert response.status_code == 403, response.text
            assert response.json()["type"].endswith("/segregation-of-duties")
            continue
        if name == "vote" and command[1] == "rita":  # a release manager holds no approving role
            assert response.status_code == 403, response.text
            assert response.json()["type"].endswith("/forbidden")
            continue
        legal = state in LEGAL[name] and not (name == "vote" and command[1] in voted)
        if not legal:
            assert response.status_code == 409, (command, state, response.text)
            if name != "vote" or state != "awaiting_approval":
                assert state in response.json()["detail"]
            current = (await client.get(f"/changes/{cid}", headers=PEOPLE["bob"])).json()
            assert current["state"] == state  # a refused command changes nothing
            continue
        assert response.status_code in (200, 201), (command, state, response.text)
        after = response.json()
        assert after["state"] in LEGAL[name][state], (command, state, after["state"])
        if name == "vote":
            voted.add(command[1])
        state = after["state"]
        human = [a for a in after["approvals"] if not a["policy"]]
        assert {a["by"] for a in human} <= voted
        assert len(human) == len({a["by"] for a in human})
        assert after["approval_progress"]["approvals"] <= len(voted)
        if state == "rejected":
            was_rejected = True
        if was_rejected:
            assert state == "rejected"
    history = (await client.get(f"/changes/{cid}/history", headers=PEOPLE["bob"])).json()
    assert history[-1]["to_state"] == state
    assert all(h["from_state"] != "rejected" for h in history)
