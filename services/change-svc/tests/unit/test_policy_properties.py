"""Properties of the approval policy over random votes (no I/O, many examples)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from change_svc.changes.policy import Vote, approval_status, required_approvals

people = st.sampled_from(["alice", "bob", "carol", "dan", "erin", "frank"])
votes = st.lists(st.builds(Vote, people, st.sampled_from(["approve", "reject"]), st.booleans()), max_size=10)
types = st.sampled_from(["normal", "emergency"])
levels = st.sampled_from(["low", "medium", "high"])


@given(types, levels, votes)
def test_approvals_never_exceed_distinct_approvers_other_than_the_requester(
    change_type: str, level: str, given_votes: list[Vote]
) -> None:
    status = approval_status(change_type, level, "alice", given_votes)
    distinct = {v.by for v in given_votes if v.by != "alice" and v.decision == "approve"}

    assert status.approvals <= len(distinct)


@given(types, levels, votes, votes)
def test_a_rejection_is_final_whatever_follows(
    change_type: str, level: str, before: list[Vote], after: list[Vote]
) -> None:
    rejection = Vote("zoe", "reject")

    assert approval_status(change_type, level, "alice", [*before, rejection, *after]).state == "rejected"


@given(types, levels, votes)
def test_approved_means_enough_distinct_approvers_and_a_cab_where_required(
    change_type: str, level: str, given_votes: list[Vote]
) -> None:
    status = approval_status(change_type, level, "alice", given_votes)
    if status.state != "approved":
        return
    first: dict[str, Vote] = {}
    for v in given_votes:
        if v.by != "alice":
            first.setdefault(v.by, v)
    approvers = [v for v in first.values() if v.decision == "approve"]
    assert not any(v.decision == "reject" for v in first.values())
    assert len(approvers) >= required_approvals(change_type, level)
    if change_type == "emergency" or level == "high":
        assert any(v.cab for v in approvers)


@given(types, levels, votes)
def test_the_requesters_votes_change_nothing(change_type: str, level: str, given_votes: list[Vote]) -> None:
    without = [v for v in given_votes if v.by != "alice"]

    assert approval_status(change_type, level, "alice", given_votes) == approval_status(
        change_type, level, "alice", without
    )
