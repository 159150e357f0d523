"""Change use cases. They flush; the route or handler that owns the transaction commits (one transaction per use
case). Every transition checks the lifecycle, records the audit entry and stages the Greenzone event and the
standard CDEvents ticket event in the same transaction.

The two hot use cases, recording a change (``create_change``) and an approver's decision (``decide``), read first
and then write everything in one statement (``store``: plain rows, prebuilt statements), so they run without a
surrounding transaction (``routes.one_write``; ``decide`` with the reads and writes of the other decisions in
flight, ``DecisionBatches``); ``decide`` writes only if the change row is the version it read, and decides again
otherwise."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import asyncpg
from opentelemetry import trace
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from change_svc.changes import policy, store
from change_svc.changes.models import Approval, Change, HistoryEntry, StandardTemplate
from change_svc.changes.schemas import (
    ApprovalProgress,
    ApprovalRead,
    ChangeCreate,
    ChangeRead,
    HistoryRead,
    StandardChangeCreate,
    StandardChangeRead,
)
from change_svc.changes.store import ApprovalRow, ChangeRow
from change_svc.projections import queries
from greenzone_common import cdevents
from greenzone_common.batching import Coalescer, one_per
from greenzone_common.contracts import CDEVENTS_TOPIC
from greenzone_common.contracts.base import EventData
from greenzone_common.contracts.change import (
    ChangeApprovalRecorded,
    ChangeApproved,
    ChangeCancelled,
    ChangeClosed,
    ChangeCompleted,
    ChangeCreated,
    ChangeRejected,
    ChangeReviewed,
    ChangeStarted,
    ChangeSubmitted,
)
from greenzone_common.contracts.common import Approval as ApprovalPart
from greenzone_common.db import pooled_driver
from greenzone_common.envelope import ReceivedEvent
from greenzone_common.outbox import Outbox
from greenzone_common.pagination import Page, PageParams, page_of

SOURCE = "/greenzone/change-svc"
POLICY_APPROVER = "greenzone:auto-approval"
TEMPLATE_APPROVER = "greenzone:standard-template"
DECISION_ATTEMPTS = 50
NUMBER = re.compile(r"^CHG-(\d{1,9})$", re.IGNORECASE)

#: a change as the ORM loads it, or as the hot use cases read and write it (``store.ChangeRow``): what responses and
#: events are built from
AnyChange = Change | ChangeRow


class ChangeNotFound(LookupError):
    pass


class SegregationOfDuties(PermissionError):
    pass


class AlreadyDecided(Exception):
    pass


class InvalidTemplate(ValueError):
    pass


@dataclass(frozen=True)
class Actor:
    """Who acts, and from which request or event: what the audit trail records."""

    sub: str
    roles: frozenset[str] = frozenset()
    request_id: str | None = None
    idempotency_key: str | None = None
    method: str | None = None
    path: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    trace_id: str | None = field(default_factory=lambda: _trace_id())

    @classmethod
    def from_event(cls, event: ReceivedEvent, sub: str) -> Actor:
        return cls(sub=sub, event_type=event.type, event_id=event.id)

    @property
    def is_human(self) -> bool:
        return self.event_type is None


def _trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def _now() -> datetime:
    return datetime.now(UTC)


# --- reads -----------------------------------------------------------------------------------------------------------


async def get_change(session: AsyncSession, change_id: str, *, lock: bool = False) -> Change:
    match = NUMBER.match(change_id)
    stmt = select(Change).where(Change.number == int(match.group(1)) if match else Change.id == change_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    change = (await session.execute(stmt)).scalar_one_or_none()
    if change is None:
        raise ChangeNotFound(change_id)
    return change


async def list_changes(
    session: AsyncSession,
    params: PageParams,
    *,
    state: Sequence[str] = (),
    service: Sequence[str] = (),
    type: Sequence[str] = (),
    environment: Sequence[str] = (),
    requested_by: str | None = None,
    release_id: str | None = None,
    risk_level: str | None = None,
) -> Page[ChangeRead]:
    stmt = select(Change)
    for column, values in (
        (Change.state, state),
        (Change.service, service),
        (Change.type, type),
        (Change.environment, environment),
    ):
        if values:
            stmt = stmt.where(column.in_(list(values)))
    for column, value in (
        (Change.requested_by, requested_by),
        (Change.release_id, release_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if risk_level is not None:
        stmt = stmt.where(Change.risk["level"].astext == risk_level)
    if params.after:
        stmt = stmt.where(Change.number < int(params.after[0]))
    rows = list((await session.execute(stmt.order_by(Change.number.desc()).limit(params.limit + 1))).scalars())
    page = page_of(rows, params, key=lambda c: [c.number])
    return Page[ChangeRead](items=[to_read(c) for c in page.items], next_cursor=page.next_cursor)


async def history(session: AsyncSession, change_id: str) -> list[HistoryRead]:
    change = await get_change(session, change_id)
    rows = (
        await session.execute(select(HistoryEntry).where(HistoryEntry.change_id == change.id).order_by(HistoryEntry.id))
    ).scalars()
    return [
        HistoryRead(
            action=r.action,
            from_state=r.from_state,  # type: ignore[arg-type]
            to_state=r.to_state,  # type: ignore[arg-type]
            actor=r.actor,
            at=r.at,
            request_id=r.request_id,
            idempotency_key=r.idempotency_key,
            method=r.method,
            path=r.path,
            trace_id=r.trace_id,
            event_type=r.event_type,
            event_id=r.event_id,
            details=r.details,
        )
        for r in rows
    ]


def progress(change: AnyChange) -> policy.ApprovalStatus:
    return policy.approval_status(
        change.type,
        change.risk["level"],
        change.requested_by,
        [policy.Vote(a.by, a.decision, a.cab) for a in change.approvals if not a.policy],
    )


def to_read(change: AnyChange, now: datetime | None = None) -> ChangeRead:
    status = progress(change)
    now = now or _now()
    return ChangeRead(
        id=change.id,
        number=change.display_number,
        title=change.title,
        description=change.description,
        type=change.type,  # type: ignore[arg-type]
        service=change.service,
        environment=change.environment,
        state=change.state,  # type: ignore[arg-type]
        outcome=change.outcome,  # type: ignore[arg-type]
        requested_by=change.requested_by,
        risk=change.risk,  # type: ignore[arg-type]
        required_approvals=change.required_approvals,
        approvals=[
            ApprovalRead(by=a.by, decision=a.decision, comment=a.comment, at=a.at, cab=a.cab, policy=a.policy)  # type: ignore[arg-type]
            for a in change.approvals
        ],
        approval_progress=ApprovalProgress(
            approvals=status.approvals,
            required=status.required,
            cab_required=status.cab_required,
            cab_given=status.cab_given,
            missing=status.missing,
        ),
        auto_approved=change.auto_approved,
        auto_approval_reasons=change.auto_approval_reasons or [],
        auto_created=change.auto_created,
        evidence=change.evidence or {},
        planned_start=change.planned_start,
        planned_end=change.planned_end,
        template_id=change.template_id,
        release_id=change.release_id,
        version=change.version,
        commits=change.commits,
        review_due=change.review_due,
        review_overdue=change.state == "completed" and change.review_due is not None and change.review_due < now,
        review_summary=change.review_summary,
        reviewed_by=change.reviewed_by,
        cancel_reason=change.cancel_reason,
        submitted_at=change.submitted_at,
        decided_at=change.decided_at,
        started_at=change.started_at,
        completed_at=change.completed_at,
        closed_at=change.closed_at,
        created_at=change.created_at,
        updated_at=change.updated_at,
    )


# --- events ----------------------------------------------------------------------------------------------------------


def _base(change: AnyChange) -> dict[str, Any]:
    return {
        "change_id": change.id,
        "number": change.display_number,
        "type": change.type,
        "service": change.service,
        "environment": change.environment,
    }


def _approval_data(change: AnyChange) -> dict[str, Any]:
    return {
        **_base(change),
        "required_approvals": change.required_approvals,
        "approvals": [
            ApprovalPart(by=a.by, decision=a.decision, comment=a.comment, at=a.at)  # type: ignore[arg-type]
            for a in change.approvals
        ],
        "auto_approved": change.auto_approved,
        "auto_approval_reasons": change.auto_approval_reasons or [],
    }


def _ticket(change: AnyChange, name: str, actor: Actor, at: datetime) -> dict[str, Any]:
    content: dict[str, Any] = {
        "summary": f"{change.display_number} {change.title}",
        "ticketType": "change",
        "group": change.service,
        "priority": change.risk["level"],
        "labels": [
            f"type:{change.type}",
            f"service:{change.service}",
            f"environment:{change.environment}",
            f"state:{change.state}",
            *([f"outcome:{change.outcome}"] if change.outcome else []),
        ],
        "milestone": change.release_id,
        "uri": f"/changes/{change.id}",
    }
    if name == "ticket.created":
        content["creator"] = change.requested_by
    else:
        content["updatedBy"] = actor.sub
    if name == "ticket.closed":
        content["resolution"] = {"closed": "completed", "cancelled": "withdrawn"}.get(change.state, change.state)
    return cdevents.build(name, source=SOURCE, subject_id=change.id, content=content, at=at)


async def _publish(
    session: AsyncSession, outbox: Outbox, change: Change, actor: Actor, at: datetime, ticket: str, *events: EventData
) -> None:
    """Stage the Greenzone events and the CDEvents ticket event of one transition.

    Every change is a ticket for tools outside Greenzone from the moment it exists, however it was raised (``POST
    /changes``, drafted by the gate, from a standard template): ``ticket.created`` on creation, ``ticket.updated``
    on every later transition, ``ticket.closed`` when it ends (rejected, cancelled, closed after its review).
    """
    await outbox.add(session, *events)
    data = _ticket(change, ticket, actor, at)
    await outbox.add_cloudevent(
        session, topic=CDEVENTS_TOPIC, type=data["context"]["type"], subject=change.id, data=data
    )


def _history_row(
    change: AnyChange, action: str, from_state: str | None, actor: Actor, at: datetime, **details: Any
) -> dict[str, Any]:
    """The audit entry of one transition, as the columns of ``change_history``."""
    return {
        "change_id": change.id,
        "action": action,
        "from_state": from_state,
        "to_state": change.state,
        "actor": actor.sub,
        "at": at,
        "request_id": actor.request_id,
        "idempotency_key": actor.idempotency_key,
        "method": actor.method,
        "path": actor.path,
        "trace_id": actor.trace_id,
        "event_type": actor.event_type,
        "event_id": actor.event_id,
        "details": {k: v for k, v in details.items() if v is not None},
    }


def _audit(
    session: AsyncSession,
    change: Change,
    action: str,
    from_state: str | None,
    actor: Actor,
    at: datetime,
    **details: Any,
) -> None:
    session.add(HistoryEntry(**_history_row(change, action, from_state, actor, at, **details)))


def _outbox_rows(
    outbox: Outbox, change: AnyChange, actor: Actor, at: datetime, ticket: str, *events: EventData
) -> list[dict[str, Any]]:
    """The outbox rows ``_publish`` stages, for the use cases that write them in one statement (``store.write``)."""
    data = _ticket(change, ticket, actor, at)
    return [
        *(outbox.row(e) for e in events),
        outbox.cloudevent_row(topic=CDEVENTS_TOPIC, type=data["context"]["type"], subject=change.id, data=data),
    ]


# --- risk ------------------------------------------------------------------------------------------------------------


@dataclass
class Assessment:
    risk: policy.Risk
    tests: policy.TestEvidence
    findings: policy.Findings
    number: int | None = None  # the new change's number (``number=True``)


async def assess_change(
    session: AsyncSession, change: ChangeCreate | Change, now: datetime, *, number: bool = False
) -> Assessment:
    """The risk of a change being recorded (``ChangeCreate``) or submitted (``Change``): the same facts of both.
    ``number``: also draw the number of the change being recorded (same round trip)."""
    return await assess(
        session,
        type=change.type,
        service=change.service,
        environment=change.environment,
        version=change.version,
        commits=change.commits,
        planned_start=change.planned_start,
        planned_end=change.planned_end,
        now=now,
        number=number,
    )


async def assess(
    session: AsyncSession,
    *,
    type: str,
    service: str,
    environment: str,
    version: str | None,
    commits: Sequence[str],
    planned_start: datetime | None,
    planned_end: datetime | None,
    now: datetime,
    number: bool = False,
) -> Assessment:
    facts = await queries.risk_facts(
        session,
        service=service,
        environment=environment,
        version=version,
        commits=commits,
        planned_start=planned_start,
        planned_end=planned_end,
        now=now,
        number=number,
    )
    risk = policy.assess_risk(
        policy.RiskInput(
            type=type,
            environment=environment,
            commits=len(commits),
            planned_start=planned_start,
            planned_end=planned_end,
            production=facts.production,
            tests=facts.tests,
            findings=facts.findings,
            failure_rate=facts.failure_rate,
            freezes=tuple(f.name for f in facts.freezes),
        )
    )
    return Assessment(risk, facts.tests, facts.findings, facts.number)


_TEST_FIELDS = tuple(f.name for f in fields(policy.TestEvidence))
_FINDING_FIELDS = tuple(f.name for f in fields(policy.Findings))
_FACTOR_FIELDS = tuple(f.name for f in fields(policy.RiskFactor))


def _evidence(assessment: Assessment) -> dict[str, Any]:
    """``asdict`` of the tests and findings, without its deep copies (their fields are plain values)."""
    tests, findings = assessment.tests, assessment.findings
    return {
        "tests": {name: getattr(tests, name) for name in _TEST_FIELDS},
        "findings": {name: getattr(findings, name) for name in _FINDING_FIELDS},
    }


def _risk_data(risk: policy.Risk) -> dict[str, Any]:
    """``asdict(risk)``, without its deep copies (the factors' fields are plain values)."""
    return {
        "score": risk.score,
        "level": risk.level,
        "factors": [{name: getattr(f, name) for name in _FACTOR_FIELDS} for f in risk.factors],
    }


# --- commands --------------------------------------------------------------------------------------------------------


async def create_change(
    session: AsyncSession,
    outbox: Outbox,
    data: ChangeCreate,
    by: Actor,
    *,
    change_id: str | None = None,
    auto_created: bool = False,
    evidence: dict[str, Any] | None = None,
    gate_decision_id: str | None = None,
) -> ChangeRow:
    """Record a change: its risk and number in one round trip, then the change, its audit entry and its events in
    one statement."""
    now = _now()
    if data.type == "standard":
        await _check_template(session, data)
    assessment = await assess_change(session, data, now, number=True)
    risk = assessment.risk
    assert assessment.number is not None
    change = ChangeRow(
        id=change_id or str(uuid.uuid4()),
        number=assessment.number,
        title=data.title,
        description=data.description,
        type=data.type,
        service=data.service,
        environment=data.environment,
        state="draft",
        outcome=None,
        requested_by=by.sub,
        risk=_risk_data(risk),
        required_approvals=policy.required_approvals(data.type, risk.level),
        auto_approved=False,
        auto_approval_reasons=[],
        auto_created=auto_created,
        evidence={**_evidence(assessment), **(evidence or {})},
        planned_start=data.planned_start,
        planned_end=data.planned_end,
        template_id=data.template_id,
        release_id=data.release_id,
        version=data.version,
        commits=list(data.commits),
        created_at=now,
        updated_at=now,
    )
    history = _history_row(change, "created", None, by, now, auto_created=auto_created or None)
    created = ChangeCreated(
        **_base(change),
        title=change.title,
        requested_by=change.requested_by,
        planned_start=change.planned_start,
        planned_end=change.planned_end,
        version=change.version,
        commits=change.commits,
        risk=change.risk,  # type: ignore[arg-type]
        template_id=change.template_id,
        release_id=change.release_id,
        auto_created=auto_created,
        gate_decision_id=gate_decision_id,
        created_at=change.created_at,
    )
    await store.write(
        session,
        outbox,
        store.INSERT_CHANGE,
        {**store.create_params(change), **store.history_params(history)},
        _outbox_rows(outbox, change, by, now, "ticket.created", created),
    )
    return change


async def _check_template(session: AsyncSession, data: ChangeCreate) -> None:
    template = await session.get(StandardTemplate, data.template_id) if data.template_id else None
    if template is None:
        raise InvalidTemplate(f"template_id {data.template_id!r} is not a standard change template")
    if template.services and data.service not in template.services:
        raise InvalidTemplate(f"template {template.name!r} does not cover service {data.service!r}")
    if template.environments and data.environment not in template.environments:
        raise InvalidTemplate(f"template {template.name!r} does not cover environment {data.environment!r}")


def _approved_event(change: AnyChange, at: datetime) -> ChangeApproved:
    return ChangeApproved(
        **_approval_data(change),
        version=change.version,
        planned_start=change.planned_start,
        planned_end=change.planned_end,
        release_id=change.release_id,
        approved_at=at,
    )


async def submit(session: AsyncSession, outbox: Outbox, change_id: str, by: Actor) -> Change:
    change = await get_change(session, change_id, lock=True)
    policy.check_transition("submit", change.state)
    now = _now()
    # facts may have arrived since the change was recorded: the risk that approvers see is the one at submission
    assessment = await assess_change(session, change, now)
    change.risk = asdict(assessment.risk)
    change.required_approvals = policy.required_approvals(change.type, assessment.risk.level)
    change.evidence = {**(change.evidence or {}), **_evidence(assessment)}
    change.submitted_at = now
    change.updated_at = now
    events: list[EventData] = []
    if change.type == "standard":
        change.state = "approved"
        change.decided_at = now
        change.auto_approval_reasons = [f"standard change from pre-approved template {change.template_id}"]
        change.approvals.append(
            Approval(
                by=TEMPLATE_APPROVER,
                decision="approve",
                comment=change.auto_approval_reasons[0],
                cab=False,
                policy=True,
                at=now,
            )
        )
    elif change.type == "normal":
        verdict = policy.auto_approval(change.type, assessment.risk, assessment.tests, assessment.findings)
        change.auto_approval_reasons = verdict.reasons
        if verdict.approved:
            change.state = "approved"
            change.auto_approved = True
            change.decided_at = now
            change.approvals.append(
                Approval(
                    by=POLICY_APPROVER,
                    decision="approve",
                    comment="; ".join(verdict.reasons),
                    cab=False,
                    policy=True,
                    at=now,
                )
            )
        else:
            change.state = "awaiting_approval"
    else:
        change.state = "awaiting_approval"
    await session.flush()
    _audit(
        session,
        change,
        "submitted",
        "draft",
        by,
        now,
        risk_score=change.risk["score"],
        auto_approved=change.auto_approved or None,
        reasons=change.auto_approval_reasons or None,
    )
    events.append(ChangeSubmitted(**_approval_data(change), state=change.state, submitted_by=by.sub, submitted_at=now))  # type: ignore[arg-type]
    if change.state == "approved":
        events.append(_approved_event(change, now))
    await _publish(session, outbox, change, by, now, "ticket.updated", *events)
    return change


class DecisionBatches:
    """Group reads and group commit for approvers' decisions (``greenzone_common.batching``): the changes the
    decisions in flight are about, read by one statement per batch, and the decisions written by one statement per
    batch, each applied only if its change is still the version read. One per engine (per process and database)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.read: Coalescer[str, ChangeRow | None] = Coalescer(self._read)
        self.write: Coalescer[tuple[dict[str, Any], list[dict[str, Any]]], bool] = Coalescer(self._write)

    @classmethod
    def of(cls, engine: AsyncEngine) -> DecisionBatches:
        return one_per(engine, cls, lambda: cls(engine))

    async def _read(self, keys: list[str]) -> list[ChangeRow | None]:
        ids: list[str | None] = []
        numbers: list[int | None] = []
        for key in keys:
            match = NUMBER.match(key)
            ids.append(None if match else key)
            numbers.append(int(match.group(1)) if match else None)
        async with pooled_driver(self.engine) as driver:
            rows = await driver.fetch(store.READ_FOR_DECISIONS, ids, numbers)
        return store.changes_with_approvals(rows, len(keys))

    async def _write(self, items: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[bool]:
        async with pooled_driver(self.engine) as driver:
            written = {row["n"] for row in await driver.fetch(store.WRITE_DECISIONS, *store.decision_arrays(items))}
        return [place in written for place in range(1, len(items) + 1)]


async def decide(
    engine: AsyncEngine, outbox: Outbox, change_id: str, decision: str, comment: str, by: Actor
) -> ChangeRow:
    """An approver's decision, decided on one read of the change and its earlier decisions and written in one
    statement that applies only if the change row is still the version read (optimistic concurrency: the other use
    cases lock the row and update it, so a concurrent one makes the write apply nothing and the decision is made
    again on a fresh read). Outcomes are those of deciding under the change's lock. The retries end: each one means
    that another use case changed the change, and its lifecycle allows few such changes while it awaits approval.
    The read and the write go with those of the other decisions in flight (``DecisionBatches``); neither needs a
    transaction around it (each statement is atomic), and the relay is woken once the write has committed."""
    batches = DecisionBatches.of(engine)
    for _ in range(DECISION_ATTEMPTS):
        change = await batches.read(change_id)
        if change is None:
            raise ChangeNotFound(change_id)
        if by.sub == change.requested_by:
            raise SegregationOfDuties(f"{by.sub} requested {change.display_number} and cannot decide on it")
        policy.check_transition("vote", change.state)
        if any(a.by == by.sub for a in change.approvals):
            raise AlreadyDecided(f"{by.sub} already decided on {change.display_number}")
        try:
            written = await batches.write(_decision_write(outbox, change, decision, comment, by))
        except asyncpg.UniqueViolationError as exc:  # (change, approver): only if written behind our back
            raise AlreadyDecided(f"{by.sub} already decided on {change.display_number}") from exc
        if written:
            outbox.wake()
            return change
    raise RuntimeError(f"{change_id} changed under each of {DECISION_ATTEMPTS} attempts to record a decision")


def _decision_write(
    outbox: Outbox, change: ChangeRow, decision: str, comment: str, by: Actor
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The decision applied to ``change`` (its state, approvals and row as the write leaves them), and the write:
    its ``store.WRITE_DECISIONS`` parameters and its outbox rows."""
    now = _now()
    approval = ApprovalRow(by=by.sub, decision=decision, comment=comment, cab="cab" in by.roles, policy=False, at=now)
    change.approvals.append(approval)
    status = progress(change)
    before = change.state
    change.state = status.state
    change.updated_at = now
    events: list[EventData] = [
        ChangeApprovalRecorded(
            **_approval_data(change),
            state=change.state,  # type: ignore[arg-type]
            by=by.sub,
            decision=decision,  # type: ignore[arg-type]
            comment=comment,
            recorded_at=now,
        )
    ]
    ticket = "ticket.updated"
    if change.state == "approved":
        change.decided_at = now
        events.append(_approved_event(change, now))
    elif change.state == "rejected":
        change.decided_at = now
        events.append(ChangeRejected(**_approval_data(change), rejected_by=by.sub, comment=comment, rejected_at=now))
        ticket = "ticket.closed"
    history = _history_row(
        change,
        {"approved": "approved", "rejected": "rejected"}.get(change.state, "vote_recorded"),
        before,
        by,
        now,
        decision=decision,
        comment=comment or None,
        approvals=status.approvals,
        required=status.required,
    )
    params = {
        "c_id": change.id,
        "c_state": change.state,
        "c_updated_at": now,
        "c_decided_at": change.decided_at,
        "row_version": change.row_version,
        **{"a_" + name: getattr(approval, name) for name in store.APPROVAL_COLUMNS},
        **store.history_params(history),
    }
    return params, _outbox_rows(outbox, change, by, now, ticket, *events)


async def start(
    session: AsyncSession, outbox: Outbox, change_id: str, by: Actor, *, change: Change | None = None
) -> Change:
    change = change or await get_change(session, change_id, lock=True)
    policy.check_transition("start", change.state)
    now = _now()
    before = change.state
    change.state = "implementing"
    change.started_at = change.updated_at = now
    _audit(session, change, "started", before, by, now)
    await _publish(
        session,
        outbox,
        change,
        by,
        now,
        "ticket.updated",
        ChangeStarted(
            **_base(change),
            version=change.version,
            release_id=change.release_id,
            started_by=by.sub if by.is_human else None,
            started_at=now,
        ),
    )
    return change


async def complete(
    session: AsyncSession,
    outbox: Outbox,
    change_id: str,
    outcome: str,
    by: Actor,
    *,
    change: Change | None = None,
    deployment_ref: str | None = None,
) -> Change:
    change = change or await get_change(session, change_id, lock=True)
    policy.check_transition("complete", change.state)
    now = _now()
    before = change.state
    change.state = "completed"
    change.outcome = outcome
    change.completed_at = change.updated_at = now
    change.review_due = policy.review_due(change.type, outcome, now)
    change.deployment_ref = deployment_ref
    _audit(session, change, "completed", before, by, now, outcome=outcome, deployment=deployment_ref)
    await _publish(
        session,
        outbox,
        change,
        by,
        now,
        "ticket.updated",
        ChangeCompleted(
            **_base(change),
            outcome=outcome,  # type: ignore[arg-type]
            version=change.version,
            release_id=change.release_id,
            completed_by=by.sub if by.is_human else None,
            review_due=change.review_due,
            deployment_ref=deployment_ref,
            completed_at=now,
        ),
    )
    return change


async def mark_rolled_back(session: AsyncSession, outbox: Outbox, change: Change, by: Actor, reason: str) -> bool:
    """A rollback of the deployment that completed a change: its outcome becomes rolled_back (and it needs a
    review). Returns False when the change is not in a state a rollback affects."""
    if change.state == "implementing":
        await complete(session, outbox, change.id, "rolled_back", by, change=change, deployment_ref=reason)
        return True
    if change.state != "completed" or change.outcome == "rolled_back":
        return False
    now = _now()
    previous = change.outcome
    change.outcome = "rolled_back"
    change.updated_at = now
    change.review_due = policy.review_due(change.type, "rolled_back", change.completed_at or now)
    _audit(session, change, "rolled_back", "completed", by, now, previous_outcome=previous, rollback=reason)
    await _publish(
        session,
        outbox,
        change,
        by,
        now,
        "ticket.updated",
        ChangeCompleted(
            **_base(change),
            outcome="rolled_back",
            version=change.version,
            release_id=change.release_id,
            completed_by=by.sub if by.is_human else None,
            review_due=change.review_due,
            previous_outcome=previous,  # type: ignore[arg-type]
            deployment_ref=change.deployment_ref,
            completed_at=now,
        ),
    )
    return True


async def cancel(session: AsyncSession, outbox: Outbox, change_id: str, reason: str, by: Actor) -> Change:
    change = await get_change(session, change_id, lock=True)
    policy.check_transition("cancel", change.state)
    now = _now()
    before = change.state
    change.state = "cancelled"
    change.cancel_reason = reason
    change.closed_at = change.updated_at = now
    _audit(session, change, "cancelled", before, by, now, reason=reason or None)
    await _publish(
        session,
        outbox,
        change,
        by,
        now,
        "ticket.closed",
        ChangeCancelled(**_base(change), reason=reason, cancelled_by=by.sub, cancelled_at=now),
    )
    return change


async def review(session: AsyncSession, outbox: Outbox, change_id: str, summary: str, by: Actor) -> Change:
    change = await get_change(session, change_id, lock=True)
    policy.check_transition("review", change.state)
    now = _now()
    change.state = "closed"
    change.review_summary = summary
    change.reviewed_by = by.sub
    change.closed_at = change.updated_at = now
    _audit(session, change, "reviewed", "completed", by, now, late=bool(change.review_due and change.review_due < now))
    await _publish(
        session,
        outbox,
        change,
        by,
        now,
        "ticket.closed",
        ChangeReviewed(**_base(change), summary=summary, reviewed_by=by.sub, reviewed_at=now),
        ChangeClosed(**_base(change), outcome=change.outcome, closed_by=by.sub, closed_at=now),  # type: ignore[arg-type]
    )
    return change


# --- standard change templates ---------------------------------------------------------------------------------------


async def create_template(session: AsyncSession, data: StandardChangeCreate, by: Actor) -> StandardTemplate:
    template = StandardTemplate(
        id=str(uuid.uuid4()),
        name=data.name,
        description=data.description,
        services=data.services,
        environments=data.environments,
        created_by=by.sub,
        created_at=_now(),
    )
    session.add(template)
    await session.flush()
    return template


async def list_templates(session: AsyncSession, params: PageParams) -> Page[StandardChangeRead]:
    stmt = select(StandardTemplate)
    if params.after:
        stmt = stmt.where(StandardTemplate.name > str(params.after[0]))
    rows = list((await session.execute(stmt.order_by(StandardTemplate.name).limit(params.limit + 1))).scalars())
    page = page_of(rows, params, key=lambda t: [t.name])
    return Page[StandardChangeRead](items=[template_read(t) for t in page.items], next_cursor=page.next_cursor)


def template_read(t: StandardTemplate) -> StandardChangeRead:
    return StandardChangeRead(
        id=t.id,
        name=t.name,
        description=t.description,
        services=t.services,
        environments=t.environments,
        created_by=t.created_by,
        created_at=t.created_at,
    )
