"""Views over changes for planning and the CAB: the schedule with conflicts and freezes, the CAB agenda, reviews
due, backlog ageing and the change success score (METRICS.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from change_svc.changes import policy
from change_svc.changes.models import Change
from change_svc.changes.service import progress
from change_svc.projections import queries
from change_svc.schedule.schemas import (
    AgeingBucket,
    AgendaItem,
    BacklogAgeing,
    ConflictRef,
    FreezeRef,
    ReviewItem,
    Schedule,
    ScheduledChange,
    SuccessScore,
)
from greenzone_common.pagination import PageParams, encode_cursor

#: changes still planned to happen (a cancelled, rejected or closed change conflicts with nothing)
PLANNED_STATES = ("draft", "awaiting_approval", "approved", "implementing")
SUCCESS_WINDOW = timedelta(days=90)


def _freeze_ref(f: policy.Freeze) -> FreezeRef:
    return FreezeRef(id=f.id, name=f.name, start=f.start, end=f.end)


async def schedule(session: AsyncSession, start: datetime, end: datetime, params: PageParams) -> Schedule:
    rows = list(
        (
            await session.execute(
                select(Change)
                .where(
                    Change.state.in_(PLANNED_STATES),
                    Change.planned_start.is_not(None),
                    Change.planned_start < end,
                    func.coalesce(Change.planned_end, Change.planned_start + timedelta(hours=1)) > start,
                )
                .order_by(Change.planned_start, Change.number)
            )
        ).scalars()
    )
    by_id = {c.id: c for c in rows}

    def window(c: Change) -> policy.Window:
        assert c.planned_start is not None
        return policy.Window(
            c.id, c.service, c.environment, c.planned_start, c.planned_end or c.planned_start + timedelta(hours=1)
        )

    windows = [window(c) for c in rows]
    found = policy.conflicts(windows)
    freezes = await queries.freezes_between(session, start, end)
    # keyset page over (planned_start, number); conflicts are found among all planned changes of the period
    if params.after:
        after_start, after_number = datetime.fromisoformat(params.after[0]), int(params.after[1])
        windows = [w for w in windows if (w.start, by_id[w.id].number) > (after_start, after_number)]
    page = windows[: params.limit]
    more = len(windows) > params.limit
    items = []
    for w in page:
        c = by_id[w.id]
        items.append(
            ScheduledChange(
                id=c.id,
                number=c.display_number,
                title=c.title,
                type=c.type,  # type: ignore[arg-type]
                service=c.service,
                environment=c.environment,
                state=c.state,  # type: ignore[arg-type]
                risk_level=c.risk["level"],
                planned_start=w.start,
                planned_end=w.end,
                conflicts=[
                    ConflictRef(
                        id=o.id,
                        number=o.display_number,
                        title=o.title,
                        state=o.state,  # type: ignore[arg-type]
                        planned_start=window(o).start,
                        planned_end=window(o).end,
                    )
                    for o in (by_id[i] for i in found[w.id])
                ],
                freezes=[_freeze_ref(f) for f in policy.freezes_hit(c.service, c.environment, w.start, w.end, freezes)],
            )
        )
    cursor = encode_cursor([page[-1].start.isoformat(), by_id[page[-1].id].number]) if more and page else None
    return Schedule(from_=start, to=end, items=items, freezes=[_freeze_ref(f) for f in freezes], next_cursor=cursor)


def _agenda_item(c: Change, now: datetime) -> AgendaItem:
    status = progress(c)
    since = c.submitted_at or c.created_at
    return AgendaItem(
        id=c.id,
        number=c.display_number,
        title=c.title,
        type=c.type,  # type: ignore[arg-type]
        service=c.service,
        environment=c.environment,
        requested_by=c.requested_by,
        risk_score=c.risk["score"],
        risk_level=c.risk["level"],
        required_approvals=status.required,
        approvals=status.approvals,
        cab_required=status.cab_required,
        cab_given=status.cab_given,
        submitted_at=c.submitted_at,
        age_hours=round((now - since).total_seconds() / 3600, 2),
        planned_start=c.planned_start,
    )


async def cab_agenda(session: AsyncSession, now: datetime) -> list[AgendaItem]:
    """Changes awaiting approval, highest risk first (then the oldest), with their age."""
    rows = (
        await session.execute(
            select(Change)
            .where(Change.state == "awaiting_approval")
            .order_by(Change.risk["score"].as_integer().desc(), Change.submitted_at, Change.number)
        )
    ).scalars()
    return [_agenda_item(c, now) for c in rows]


async def reviews(session: AsyncSession, now: datetime, *, overdue_only: bool) -> list[ReviewItem]:
    """Completed changes whose post-implementation review is due (emergency, failed or rolled back)."""
    stmt = select(Change).where(Change.state == "completed", Change.review_due.is_not(None))
    if overdue_only:
        stmt = stmt.where(Change.review_due < now)
    rows = (await session.execute(stmt.order_by(Change.review_due, Change.number))).scalars()
    return [
        ReviewItem(
            id=c.id,
            number=c.display_number,
            title=c.title,
            type=c.type,  # type: ignore[arg-type]
            service=c.service,
            outcome=c.outcome,
            completed_at=c.completed_at,
            review_due=c.review_due,  # type: ignore[arg-type]
            overdue=c.review_due is not None and c.review_due < now,
        )
        for c in rows
    ]


async def backlog_ageing(session: AsyncSession, now: datetime, service: str | None = None) -> BacklogAgeing:
    """Open changes (draft, awaiting approval, approved, implementing) by age since they were raised."""
    stmt = select(Change.state, Change.created_at).where(Change.state.in_(policy.OPEN_STATES))
    if service:
        stmt = stmt.where(Change.service == service)
    rows = (await session.execute(stmt)).all()
    buckets: dict[str, dict[str, int]] = {name: {} for name, _ in policy.AGE_BUCKETS}
    for state, created_at in rows:
        by_state = buckets[policy.age_bucket(now - created_at)]
        by_state[state] = by_state.get(state, 0) + 1
    oldest_stmt = select(Change).where(Change.state.in_(policy.OPEN_STATES))
    if service:
        oldest_stmt = oldest_stmt.where(Change.service == service)
    oldest = (await session.execute(oldest_stmt.order_by(Change.created_at).limit(5))).scalars()
    return BacklogAgeing(
        as_of=now,
        open=len(rows),
        buckets=[AgeingBucket(bucket=name, count=sum(s.values()), by_state=s) for name, s in buckets.items()],
        oldest=[_oldest(c, now) for c in oldest],
    )


def _oldest(c: Change, now: datetime) -> dict[str, Any]:
    return {
        "id": c.id,
        "number": c.display_number,
        "title": c.title,
        "state": c.state,
        "service": c.service,
        "age_days": round((now - c.created_at).total_seconds() / 86400, 2),
    }


async def success_scores(session: AsyncSession, now: datetime, service: str | None = None) -> list[SuccessScore]:
    """Per service: completed changes of the last 90 days with outcome successful ÷ all completed ones."""
    stmt = select(Change.service, Change.outcome).where(
        Change.completed_at.is_not(None), Change.completed_at >= now - SUCCESS_WINDOW, Change.outcome.is_not(None)
    )
    if service:
        stmt = stmt.where(Change.service == service)
    outcomes: dict[str, list[str]] = {}
    for name, outcome in (await session.execute(stmt)).all():
        outcomes.setdefault(name, []).append(outcome)
    if service and service not in outcomes:
        outcomes[service] = []
    return [
        SuccessScore(
            service=name,
            window_days=SUCCESS_WINDOW.days,
            completed=len(values),
            successful=sum(1 for o in values if o == "successful"),
            score=policy.success_score(values),
        )
        for name, values in sorted(outcomes.items())
    ]
