from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from pydantic_core import to_json

from greenzone_common.audit import Actor
from greenzone_common.auth import CurrentUser
from greenzone_common.problems import Problem
from greenzone_common.service import Runtime, SessionsDep
from release_svc.gates import service
from release_svc.gates.schemas import GateDecisionRead, GateRequestBody
from release_svc.roles import GateCaller

router = APIRouter(tags=["gate"])


@router.post("/gates/evaluate", response_model=GateDecisionRead)
async def evaluate_gate(body: GateRequestBody, user: GateCaller, http: Request) -> Response:
    """May this service at this version go to this environment now? Decided from local projections only."""
    request = service.normalise(body.service, body.environment, body.version, body.commit, body.change_id)
    actor = Actor.from_request(user, http)
    runtime: Runtime = http.app.state.runtime  # the hot path: read directly rather than through two dependencies
    answer = await service.evaluate_alone(
        runtime.engine, runtime.outbox, request, requested_by=user.sub, now=datetime.now(UTC), actor=actor
    )
    # GateDecisionRead in JSON already: serialised as FastAPI would serialise the model (the same bytes, see
    # tests/unit/test_gate_records.py), without building the model to validate and dump it again
    return Response(content=to_json(answer), media_type="application/json")


@router.get("/gates/decisions/{decision_id}", response_model=GateDecisionRead)
async def get_decision(decision_id: str, user: CurrentUser, sessions: SessionsDep) -> GateDecisionRead:
    async with sessions() as session:
        record = await service.get_decision(session, decision_id)
    if record is None:
        raise Problem(404, f"No gate decision with id {decision_id}")
    return service.to_read(record)
