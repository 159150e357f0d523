from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from change_svc.changes import policy, service
from change_svc.changes.schemas import (
    ApprovalCreate,
    ChangeCancel,
    ChangeComplete,
    ChangeCreate,
    ChangeRead,
    ChangeReview,
    ChangeState,
    ChangeType,
    HistoryRead,
    StandardChangeCreate,
    StandardChangeRead,
)
from greenzone_common.auth import CurrentUser, Principal, RequireRole
from greenzone_common.db import unit_of_work
from greenzone_common.pagination import Page, PageDep
from greenzone_common.problems import Problem
from greenzone_common.service import OutboxDep, RuntimeDep, SessionsDep

router = APIRouter(tags=["changes"])

Requester = Annotated[Principal, RequireRole("requester", "release_manager", "pipeline", "admin")]
Approver = Annotated[Principal, RequireRole("approver", "cab")]
Canceller = Annotated[Principal, RequireRole("requester", "release_manager", "admin")]
Reviewer = Annotated[Principal, RequireRole("requester", "approver", "cab", "release_manager", "admin")]
TemplateOwner = Annotated[Principal, RequireRole("cab", "release_manager", "admin")]


def actor(user: Principal, request: Request) -> service.Actor:
    """The principal and the request it acted through, as the audit trail records them."""
    return service.Actor(
        sub=user.sub,
        roles=user.roles,
        request_id=request.headers.get("x-request-id") or str(uuid.uuid4()),
        idempotency_key=request.headers.get("idempotency-key"),
        method=request.method,
        path=request.url.path,
    )


@asynccontextmanager
async def one_write(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """For a use case whose reads come first and whose writes are one statement (``service.create_change``): no
    transaction around them, so no BEGIN and COMMIT round trips. The statement is atomic on its own, and the reads
    see what they would see in a READ COMMITTED transaction (each statement its own snapshot). The session's commit
    costs no round trip; it wakes the relay when outbox rows were written."""
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
        await session.commit()


@contextmanager
def domain_errors() -> Iterator[None]:
    """Domain exceptions → RFC 9457 problems."""
    try:
        yield
    except service.ChangeNotFound as exc:
        raise Problem(404, f"No change with id {exc.args[0]}") from None
    except policy.IllegalTransition as exc:
        raise Problem(409, str(exc), slug="illegal-transition", state=exc.state) from None
    except service.SegregationOfDuties as exc:
        raise Problem(403, str(exc), slug="segregation-of-duties") from None
    except service.AlreadyDecided as exc:
        raise Problem(409, str(exc), slug="already-decided") from None
    except service.InvalidTemplate as exc:
        raise Problem(
            422, str(exc), slug="invalid-template", errors=[{"loc": ["body", "template_id"], "msg": str(exc)}]
        ) from None


@router.post("/changes", status_code=201, response_model=ChangeRead)
async def create_change(
    body: ChangeCreate, user: Requester, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> ChangeRead:
    with domain_errors():
        async with one_write(sessions) as session:
            change = await service.create_change(session, outbox, body, actor(user, request))
    return service.to_read(change)


@router.get("/changes", response_model=Page[ChangeRead])
async def list_changes(
    user: CurrentUser,
    sessions: SessionsDep,
    page: PageDep,
    state: Annotated[list[ChangeState] | None, Query(description="One or more states")] = None,
    service_: Annotated[list[str] | None, Query(alias="service", description="One or more services")] = None,
    type: Annotated[list[ChangeType] | None, Query(description="One or more types")] = None,
    environment: Annotated[list[str] | None, Query(description="One or more environments")] = None,
    requested_by: str | None = None,
    release_id: str | None = None,
    risk_level: Annotated[str | None, Query(pattern="^(low|medium|high)$")] = None,
) -> Page[ChangeRead]:
    async with sessions() as session:
        return await service.list_changes(
            session,
            page,
            state=state or (),
            service=service_ or (),
            type=type or (),
            environment=environment or (),
            requested_by=requested_by,
            release_id=release_id,
            risk_level=risk_level,
        )


@router.get("/changes/{change_id}", response_model=ChangeRead)
async def get_change(change_id: str, user: CurrentUser, sessions: SessionsDep) -> ChangeRead:
    with domain_errors():
        async with sessions() as session:
            change = await service.get_change(session, change_id)
    return service.to_read(change)


@router.get("/changes/{change_id}/history", response_model=list[HistoryRead])
async def change_history(change_id: str, user: CurrentUser, sessions: SessionsDep) -> list[HistoryRead]:
    with domain_errors():
        async with sessions() as session:
            return await service.history(session, change_id)


@router.post("/changes/{change_id}/submit", response_model=ChangeRead)
async def submit_change(
    change_id: str, user: Requester, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> ChangeRead:
    with domain_errors():
        async with unit_of_work(sessions) as session:
            change = await service.submit(session, outbox, change_id, actor(user, request))
    return service.to_read(change)


@router.post("/changes/{change_id}/approvals", status_code=201, response_model=ChangeRead)
async def decide_change(
    change_id: str, body: ApprovalCreate, user: Approver, request: Request, runtime: RuntimeDep
) -> ChangeRead:
    with domain_errors():
        change = await service.decide(
            runtime.engine, runtime.outbox, change_id, body.decision, body.comment, actor(user, request)
        )
    return service.to_read(change)


@router.post("/changes/{change_id}/start", response_model=ChangeRead)
async def start_change(
    change_id: str, user: Requester, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> ChangeRead:
    with domain_errors():
        async with unit_of_work(sessions) as session:
            change = await service.start(session, outbox, change_id, actor(user, request))
    return service.to_read(change)


@router.post("/changes/{change_id}/complete", response_model=ChangeRead)
async def complete_change(
    change_id: str, body: ChangeComplete, user: Requester, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> ChangeRead:
    with domain_errors():
        async with unit_of_work(sessions) as session:
            change = await service.complete(session, outbox, change_id, body.outcome, actor(user, request))
    return service.to_read(change)


@router.post("/changes/{change_id}/cancel", response_model=ChangeRead)
async def cancel_change(
    change_id: str, body: ChangeCancel, user: Canceller, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> ChangeRead:
    with domain_errors():
        async with unit_of_work(sessions) as session:
            change = await service.cancel(session, outbox, change_id, body.reason, actor(user, request))
    return service.to_read(change)


@router.post("/changes/{change_id}/review", response_model=ChangeRead)
async def review_change(
    change_id: str, body: ChangeReview, user: Reviewer, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> ChangeRead:
    with domain_errors():
        async with unit_of_work(sessions) as session:
            change = await service.review(session, outbox, change_id, body.summary, actor(user, request))
    return service.to_read(change)


@router.post("/standard-changes", status_code=201, response_model=StandardChangeRead)
async def create_standard_change(
    body: StandardChangeCreate, user: TemplateOwner, request: Request, sessions: SessionsDep
) -> StandardChangeRead:
    try:
        async with unit_of_work(sessions) as session:
            template = await service.create_template(session, body, actor(user, request))
    except IntegrityError:
        raise Problem(409, f"A standard change template named {body.name!r} exists already") from None
    return service.template_read(template)


@router.get("/standard-changes", response_model=Page[StandardChangeRead])
async def list_standard_changes(user: CurrentUser, sessions: SessionsDep, page: PageDep) -> Page[StandardChangeRead]:
    async with sessions() as session:
        return await service.list_templates(session, page)
