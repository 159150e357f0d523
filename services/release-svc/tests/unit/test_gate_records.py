"""The gate builds its answer, its audit entry's ``after`` and its ``gate.evaluated`` data directly (the hot path):
for every decision the rules can take, they are exactly what the pydantic models would have validated and dumped."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic_core import to_json

from greenzone_common.contracts.common import GateReason
from greenzone_common.contracts.release import GateEvaluated
from release_svc.gates import policy
from release_svc.gates.schemas import GateDecisionRead, GateReasonRead
from release_svc.gates.service import decision_records

# every decision of the policy table (tests run with --import-mode=importlib: the module is loaded by path)
_spec = importlib.util.spec_from_file_location("gate_policy_table", Path(__file__).with_name("test_gate_policy.py"))
assert _spec is not None and _spec.loader is not None
_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_table)
NOW: datetime = _table.NOW
ROWS: list[tuple[object, ...]] = _table.ROWS

AT_VARIANTS = [
    NOW,
    NOW.replace(microsecond=123456),
    (NOW + timedelta(microseconds=5)).astimezone(timezone(timedelta(hours=-5))).astimezone(UTC),
]


def _requests(request: policy.GateRequest) -> list[policy.GateRequest]:
    return [
        request,
        replace(request, version=None),
        replace(request, commit=None),
        replace(request, version=None, commit=None, change_id="chg-1"),
    ]


CASES = [
    pytest.param(request, snapshot, at, id=f"{row_id}-{i}-{j}")
    for row_id, base, snapshot, *_ in ROWS
    for i, request in enumerate(_requests(base))  # type: ignore[arg-type]
    for j, at in enumerate(AT_VARIANTS)
]


@pytest.mark.parametrize(("request_", "snapshot", "at"), CASES)
def test_records_are_what_the_models_dump(
    request_: policy.GateRequest, snapshot: policy.Snapshot, at: datetime
) -> None:
    decision = policy.evaluate(request_, snapshot, at)
    change_id = "new-change" if decision.create_change else decision.change_id
    protected = bool(snapshot.environment and snapshot.environment.protected)
    records = decision_records(
        request_,
        decision,
        decision_id="d-1",
        change_id=change_id,
        protected=protected,
        requested_by="rita",
        at=at,
    )
    reasons = [{"code": r.code, "message": r.message} for r in decision.reasons]
    read = GateDecisionRead(
        decision=decision.decision,  # type: ignore[arg-type]
        reasons=[GateReasonRead.model_validate(r) for r in reasons],
        decision_id="d-1",
        change_id=change_id,
        evaluated_at=at,
        service=request_.service,
        environment=request_.environment,
        version=request_.version,
        commit=request_.commit,
        change_auto_created=decision.create_change,
    )
    event = GateEvaluated(
        decision_id="d-1",
        service=request_.service,
        environment=request_.environment,
        version=request_.version,
        commit=request_.commit,
        decision=decision.decision,  # type: ignore[arg-type]
        reasons=[GateReason.model_validate(r) for r in reasons],
        change_id=change_id,
        change_auto_created=decision.create_change,
        protected=protected,
        requested_by="rita",
        evaluated_at=at,
    )
    assert records.read == read.model_dump(mode="json")
    assert records.event == event.model_dump(mode="json")
    # POST /gates/evaluate sends the bytes FastAPI would have made of the model (response_model=GateDecisionRead)
    assert to_json(records.read) == read.model_dump_json().encode()
    # and the deploy route embeds the model
    assert records.model().model_dump_json() == read.model_dump_json()
    assert records.model().model_dump(mode="json") == read.model_dump(mode="json")
    assert records.model() == read
