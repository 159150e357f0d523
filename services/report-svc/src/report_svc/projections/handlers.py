"""Consumers of every topic: each event becomes facts through idempotent, commutative upserts.

A fact never depends on the arrival order: keys are natural (the source's ids), times merge with ``least`` /
``greatest``, and a snapshot (a release, a catalogue entry, a heartbeat) only replaces an older one by its own
timestamp. The inbox makes every event apply once; these upserts make a replay or a reordering harmless too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, Table, case, func, insert, literal, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Session

from greenzone_common.consumer import Handler, Received, Subscription
from greenzone_common.contracts import CHANGE_TOPIC, PIPELINE_TOPIC, PLATFORM_TOPIC, RELEASE_TOPIC
from greenzone_common.contracts import change as ch
from greenzone_common.contracts import pipeline as pl
from greenzone_common.contracts import release as rl
from greenzone_common.contracts.base import EventData
from greenzone_common.contracts.platform import PlatformHeartbeatSent
from greenzone_common.envelope import ReceivedEvent
from report_svc.metrics.formulas import normalise_environment as env_name
from report_svc.projections.facts import (
    CatalogueService,
    CommitRecord,
    DeploymentReport,
    EnvironmentView,
    FactVersion,
    FreezeView,
    GateDecisionRecord,
    Heartbeat,
    IncidentFact,
    PipelineRun,
    ReleaseView,
    RollbackFact,
    ScanEvidence,
    TestEvidence,
    WindowView,
)
from report_svc.projections.models import ChangeEvent, ChangeLifecycle, ChangeView

GROUP = "report-svc.changes"
RELEASE_GROUP = "report-svc.releases"
PIPELINE_GROUP = "report-svc.pipeline"
PLATFORM_GROUP = "report-svc.platform"

ReleaseClosedHook = Callable[[AsyncSession, rl.ReleaseClosed], Any]


# --- the batch buffer ---
# The consumer applies a batch of events in one transaction, one handler call per event. The most frequent facts
# (deployment reports, commits, and the fact-version bumps of every event) are gathered here and written once per
# batch, just before the commit, with one statement per table: same effects, far fewer round trips.

BUFFER = "report_svc.buffer"


@dataclass
class Buffer:
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    commits: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    touches: Counter[tuple[str, str]] = field(default_factory=Counter)
    created: dict[str, dict[str, Any]] = field(default_factory=dict)  # change.created, by change id
    created_lifecycle: dict[str, dict[str, Any]] = field(default_factory=dict)
    change_events: list[dict[str, Any]] = field(default_factory=list)
    late: LateFacts = field(default_factory=lambda: LateFacts())


@dataclass
class LateFacts:
    """What the batch's facts could change in the report of a release that already closed (``releases/refresh``).

    A release's report reads the production facts of its services: facts at its version, and facts from before it
    closed (a deployment, rollback, incident or gate decision then can change its deployments, their outcome and the
    incidents linked to them); the changes it lists; and its own events."""

    earliest: dict[str, datetime] = field(default_factory=dict)  # service -> earliest fact time
    versions: set[tuple[str, str]] = field(default_factory=set)  # (service, version)
    changes: set[str] = field(default_factory=set)
    releases: set[str] = field(default_factory=set)
    incidents: set[str] = field(default_factory=set)  # a resolution after the close still changes the report

    def fact(self, service: str, at: datetime | None, version: str | None = None) -> None:
        if at is not None:
            seen = self.earliest.get(service)
            self.earliest[service] = at if seen is None else min(seen, at)
        if version:
            self.versions.add((service, version))

    def __bool__(self) -> bool:
        return bool(self.earliest or self.versions or self.changes or self.releases or self.incidents)


# Every release the late facts may concern is locked FOR SHARE (in release_id order), closed or not: a concurrent
# release.closed updates that row, so either it waits for this commit and its report sees these facts, or this
# statement waits for its commit, sees closed_at and marks the release. Without the lock both could miss each other.
MARK_LATE = text(
    """
WITH f AS (SELECT * FROM unnest(CAST(:services AS text[]), CAST(:earliest AS timestamptz[])) AS f(service, at)),
v AS (SELECT * FROM unnest(CAST(:vservices AS text[]), CAST(:versions AS text[])) AS v(service, version)),
hit AS (
    SELECT r.release_id, r.closed_at FROM report.releases r
    WHERE r.cancelled_at IS NULL AND (
        r.release_id = ANY(CAST(:releases AS text[]))
        OR r.changes ?| CAST(:changes AS text[])
        OR EXISTS (SELECT 1 FROM f WHERE r.services ? f.service AND (r.closed_at IS NULL OR f.at <= r.closed_at))
        OR EXISTS (SELECT 1 FROM v WHERE v.version = r.version AND r.services ? v.service)
        OR EXISTS (
            SELECT 1 FROM report.release_reports rr, jsonb_array_elements(rr.body -> 'incidents') AS i
            WHERE rr.release_id = r.release_id AND i ->> 'id' = ANY(CAST(:incidents AS text[]))
        )
    )
    ORDER BY r.release_id
    FOR SHARE OF r
)
INSERT INTO report.report_refresh (release_id)
SELECT release_id FROM hit WHERE closed_at IS NOT NULL
ON CONFLICT DO NOTHING
"""
)


def _mark_late(conn: Any, late: LateFacts) -> None:
    earliest = sorted(late.earliest.items())
    versions = sorted(late.versions)
    conn.execute(
        MARK_LATE,
        {
            "services": [s for s, _ in earliest],
            "earliest": [t for _, t in earliest],
            "vservices": [s for s, _ in versions],
            "versions": [v for _, v in versions],
            "changes": sorted(late.changes),
            "releases": sorted(late.releases),
            "incidents": sorted(late.incidents),
        },
    )


def buffer(session: AsyncSession) -> Buffer:
    sync = session.sync_session
    buf: Buffer | None = sync.info.get(BUFFER)
    if buf is None:
        buf = sync.info[BUFFER] = Buffer()
        sa_event.listen(sync, "before_commit", flush_buffer_sync)  # a session lives for one batch
    return buf


def flush_buffer_sync(sync: Session) -> None:
    # Core statements on the tables (not the ORM classes): the session runs them as one cached executemany, where
    # the ORM's bulk path would compile an upsert per row.
    buf: Buffer | None = sync.info.pop(BUFFER, None)
    if buf is None:
        return
    conn = sync.connection()
    if buf.reports:
        # in key order, like every batch write here: concurrent batches then lock rows in the same order
        conn.execute(
            pg_insert(_table(DeploymentReport)).on_conflict_do_nothing(), [buf.reports[k] for k in sorted(buf.reports)]
        )
    if buf.commits:
        commits = _table(CommitRecord)
        stmt = pg_insert(commits)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[commits.c.service, commits.c.commit_key],
                set_={
                    "started_at": func.least(commits.c.started_at, stmt.excluded.started_at),
                    "pushed_at": func.least(commits.c.pushed_at, stmt.excluded.pushed_at),
                    "sha": func.coalesce(commits.c.sha, stmt.excluded.sha),
                },
            ),
            [buf.commits[k] for k in sorted(buf.commits)],
        )
    if buf.created:
        views = _table(ChangeView)
        stmt = pg_insert(views)
        conn.execute(
            # created may arrive after a later event of the same change: never overwrite a later state
            stmt.on_conflict_do_update(
                index_elements=[views.c.change_id],
                set_={k: stmt.excluded[k] for k in CREATED_FIELDS},
            ),
            [buf.created[k] for k in sorted(buf.created)],
        )
        lifecycles = _table(ChangeLifecycle)
        lifecycle = pg_insert(lifecycles)
        conn.execute(
            lifecycle.on_conflict_do_update(
                index_elements=[lifecycles.c.change_id],
                set_={
                    k: func.coalesce(lifecycle.excluded[k], lifecycles.c[k])
                    for k in ("planned_start", "planned_end", "release_id")
                },
            ),
            [buf.created_lifecycle[k] for k in sorted(buf.created_lifecycle)],
        )
    if buf.change_events:
        conn.execute(insert(_table(ChangeEvent)), buf.change_events)
    if buf.touches:
        versions = _table(FactVersion)
        stmt = pg_insert(versions)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[versions.c.service, versions.c.writer],
                set_={"version": versions.c.version + stmt.excluded.version},
            ),
            [{"service": s, "writer": w, "version": n} for (s, w), n in sorted(buf.touches.items())],
        )
    if buf.late:
        _mark_late(conn, buf.late)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


async def flush_buffer(session: AsyncSession) -> None:
    """Write what the batch gathered so far (before reading it back in the same transaction)."""
    if BUFFER in session.sync_session.info:
        await session.run_sync(flush_buffer_sync)


def _merge_commit(buf: Buffer, row: dict[str, Any]) -> None:
    key = (row["service"], row["commit_key"])
    seen = buf.commits.get(key)
    if seen is None:
        buf.commits[key] = row
        return
    seen["started_at"] = min(seen["started_at"], row["started_at"])
    seen["pushed_at"] = min(seen["pushed_at"], row["pushed_at"])
    seen["sha"] = seen["sha"] or row["sha"]


async def _insert_new(session: AsyncSession, model: type[DeclarativeBase], rows: Sequence[dict[str, Any]]) -> None:
    """Insert facts keyed by their natural key; one already there is the same fact."""
    if rows:  # parameters apart from the statement: compiled once, cached
        await session.execute(pg_insert(model).on_conflict_do_nothing(), list(rows))


async def _upsert_latest(
    session: AsyncSession, model: Any, values: dict[str, Any], *, keys: list[str], stamp: str
) -> None:
    """Keep the snapshot with the latest ``stamp``: an older one arriving late changes nothing."""
    stmt = pg_insert(model).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={k: stmt.excluded[k] for k in values if k not in keys},
        where=getattr(model, stamp) < stmt.excluded[stamp],
    )
    await session.execute(stmt)


async def _touch(session: AsyncSession, event: ReceivedEvent, services: Iterable[str]) -> None:
    """The facts behind the DORA figures of ``services`` changed: their cached index is out of date."""
    touches = buffer(session).touches
    for service in set(services):
        touches[(service, event.topic)] += 1


# --- change-svc ---

CHANGE_STATE_RANK = {
    "draft": 0,
    "awaiting_approval": 1,
    "approved": 2,
    "rejected": 2,
    "implementing": 3,
    "completed": 4,
    "cancelled": 4,
    "closed": 5,
}


def _rank(column: Any) -> ColumnElement[int]:
    return case(CHANGE_STATE_RANK, value=column, else_=literal(-1))


CREATED_FIELDS = (
    "number",
    "title",
    "type",
    "service",
    "environment",
    "requested_by",
    "version",
    "risk_level",
    "created_at",
)


async def on_change_created(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    """Gathered in the batch buffer and written with one statement per table before the commit."""
    assert isinstance(data, ch.ChangeCreated)
    buf = buffer(session)
    buf.created[data.change_id] = {
        "change_id": data.change_id,
        "number": data.number,
        "title": data.title,
        "type": data.type,
        "service": data.service,
        "environment": env_name(data.environment),
        "state": "draft",
        "requested_by": data.requested_by,
        "version": data.version,
        "risk_level": data.risk.level,
        "created_at": data.created_at,
        "updated_at": data.created_at,
    }
    both = data.planned_start is not None and data.planned_end is not None
    buf.created_lifecycle[data.change_id] = {
        "change_id": data.change_id,
        "planned_start": data.planned_start if both else None,
        "planned_end": data.planned_end if both else None,
        "release_id": data.release_id,
    }
    await _change_event(session, event, data.change_id)
    await _touch(session, event, [data.service])


async def _change_event(session: AsyncSession, event: ReceivedEvent, change_id: str) -> None:
    buffer(session).change_events.append(
        {"change_id": change_id, "ce_id": event.id, "type": event.type, "occurred_at": event.time}
    )


async def _change_state(session: AsyncSession, data: ch.ChangeEventData, state: str, at: datetime) -> None:
    """The change reached ``state``: a later step never goes back to an earlier one."""
    values = {
        "change_id": data.change_id,
        "number": data.number,
        "title": "",
        "type": data.type,
        "service": data.service,
        "environment": env_name(data.environment),
        "state": state,
        "requested_by": "",
        "created_at": at,
        "updated_at": at,
    }
    stmt = pg_insert(ChangeView).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ChangeView.change_id],
        set_={
            "state": case(
                (_rank(stmt.excluded.state) > _rank(ChangeView.state), stmt.excluded.state), else_=ChangeView.state
            ),
            "updated_at": func.greatest(ChangeView.updated_at, stmt.excluded.updated_at),
        },
    )
    await session.execute(stmt)


async def _lifecycle(
    session: AsyncSession,
    change_id: str,
    *,
    planned_start: datetime | None = None,
    planned_end: datetime | None = None,
    release: str | None = None,
    outcome: str | None = None,
    outcome_at: datetime | None = None,
    **stamps: datetime | None,
) -> None:
    values: dict[str, Any] = {"change_id": change_id, **stamps}
    set_: dict[str, Any] = {}
    stmt = pg_insert(ChangeLifecycle)
    for name in stamps:
        set_[name] = func.least(getattr(ChangeLifecycle, name), stmt.excluded[name])
    if planned_start is not None and planned_end is not None:
        values |= {"planned_start": planned_start, "planned_end": planned_end}
        set_ |= {"planned_start": stmt.excluded.planned_start, "planned_end": stmt.excluded.planned_end}
    if release is not None:
        values["release_id"] = release
        set_["release_id"] = stmt.excluded.release_id
    if outcome is not None:
        values["outcome"] = outcome
        if outcome_at is not None:
            # the latest completion carries the outcome (a rollback after a success corrects it)
            values["outcome_at"] = outcome_at
            later = ChangeLifecycle.outcome_at.is_(None) | (ChangeLifecycle.outcome_at < stmt.excluded.outcome_at)
            set_["outcome"] = case((later, stmt.excluded.outcome), else_=ChangeLifecycle.outcome)
            set_["outcome_at"] = func.greatest(ChangeLifecycle.outcome_at, stmt.excluded.outcome_at)
        else:  # a closing event only fills the outcome in when no completion said it
            set_["outcome"] = func.coalesce(ChangeLifecycle.outcome, stmt.excluded.outcome)
    stmt = stmt.values(values)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[ChangeLifecycle.change_id], set_=set_)
        if set_
        else stmt.on_conflict_do_nothing()
    )


async def on_change_event(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    """Every change event after ``created``: the furthest state and each step's time."""
    assert isinstance(data, ch.ChangeEventData)
    match data:
        case ch.ChangeSubmitted():
            await _change_state(session, data, data.state, data.submitted_at)
            approved = data.submitted_at if data.state == "approved" else None
            await _lifecycle(session, data.change_id, submitted_at=data.submitted_at, approved_at=approved)
        case ch.ChangeApproved():
            await _change_state(session, data, "approved", data.approved_at)
            await _lifecycle(
                session,
                data.change_id,
                planned_start=data.planned_start,
                planned_end=data.planned_end,
                release=data.release_id,
                approved_at=data.approved_at,
            )
        case ch.ChangeRejected():
            await _change_state(session, data, "rejected", data.rejected_at)
            await _lifecycle(session, data.change_id, rejected_at=data.rejected_at)
        case ch.ChangeStarted():
            await _change_state(session, data, "implementing", data.started_at)
            await _lifecycle(session, data.change_id, release=data.release_id, started_at=data.started_at)
        case ch.ChangeCompleted():
            await _change_state(session, data, "completed", data.completed_at)
            await _lifecycle(
                session,
                data.change_id,
                release=data.release_id,
                outcome=data.outcome,
                outcome_at=data.completed_at,
                completed_at=data.completed_at,
            )
        case ch.ChangeCancelled():
            await _change_state(session, data, "cancelled", data.cancelled_at)
            await _lifecycle(session, data.change_id, cancelled_at=data.cancelled_at)
        case ch.ChangeClosed():
            await _change_state(session, data, "closed", data.closed_at)
            await _lifecycle(session, data.change_id, outcome=data.outcome, closed_at=data.closed_at)
        case ch.ChangeApprovalRecorded():
            await _change_state(session, data, data.state, data.recorded_at)
        case _:  # reviewed: the timeline only
            pass
    buffer(session).late.changes.add(data.change_id)
    await _change_event(session, event, data.change_id)
    await _touch(session, event, [data.service])


def change_subscription() -> Subscription:
    handlers: dict[str, Handler] = {ch.ChangeCreated.event_type: on_change_created}
    for model in (
        ch.ChangeSubmitted,
        ch.ChangeApproved,
        ch.ChangeRejected,
        ch.ChangeStarted,
        ch.ChangeCompleted,
        ch.ChangeCancelled,
        ch.ChangeClosed,
        ch.ChangeReviewed,
        ch.ChangeApprovalRecorded,
    ):
        handlers[model.event_type] = on_change_event
    return Subscription(group=GROUP, topics=[CHANGE_TOPIC], handlers=handlers)


# --- release-svc ---

RELEASE_STATE_RANK = {
    "planned": 0,
    "in_progress": 1,
    "deployed": 2,
    "early_life_support": 3,
    "closed": 4,
    "cancelled": 4,
}


def _release_time(data: rl.ReleaseEventData) -> datetime:
    for name in (
        "planned_at",
        "changed_at",
        "requested_at",
        "deployed_at",
        "rolled_back_at",
        "cancelled_at",
        "started_at",
        "closed_at",
    ):
        value = getattr(data, name, None)
        if isinstance(value, datetime):
            return value
    raise ValueError(f"{type(data).__name__} has no time")


async def _release_snapshot(session: AsyncSession, data: rl.ReleaseEventData) -> None:
    at = _release_time(data)
    values: dict[str, Any] = {
        "release_id": data.release_id,
        "name": data.name,
        "version": data.version,
        "services": list(data.services),
        "changes": list(data.changes),
        "state": data.state,
        "snapshot_at": at,
    }
    stmt = pg_insert(ReleaseView).values(values)
    rank_new = case(RELEASE_STATE_RANK, value=stmt.excluded.state, else_=literal(-1))
    rank_old = case(RELEASE_STATE_RANK, value=ReleaseView.state, else_=literal(-1))
    newer = (ReleaseView.snapshot_at < stmt.excluded.snapshot_at) | (
        (ReleaseView.snapshot_at == stmt.excluded.snapshot_at) & (rank_old < rank_new)
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ReleaseView.release_id],
            set_={
                k: case((newer, stmt.excluded[k]), else_=getattr(ReleaseView, k)) for k in values if k != "release_id"
            },
        )
    )
    stamps: dict[str, Any] = {}
    milestones = getattr(data, "milestones", None)
    if isinstance(data, rl.ReleasePlanned):
        stamps["planned_at"] = data.planned_at
    if isinstance(data, rl.ReleaseEarlyLifeSupportStarted):
        stamps |= {"els_started_at": data.started_at, "els_ends_at": data.ends_at}
    if isinstance(data, rl.ReleaseClosed):
        stamps["closed_at"] = data.closed_at
    if isinstance(data, rl.ReleaseCancelled):
        stamps["cancelled_at"] = data.cancelled_at
    # the row exists now (the snapshot upsert above): each milestone reached keeps its earliest time
    if stamps:
        await session.execute(
            update(ReleaseView)
            .where(ReleaseView.release_id == data.release_id)
            .values({k: func.least(getattr(ReleaseView, k), v) for k, v in stamps.items()})
        )
    if milestones is not None:
        newer_plan = ReleaseView.milestones_at.is_(None) | (ReleaseView.milestones_at < at)
        await session.execute(
            update(ReleaseView)
            .where(ReleaseView.release_id == data.release_id)
            .values(
                milestones=case(
                    (newer_plan, literal(milestones.model_dump(mode="json"), JSONB)), else_=ReleaseView.milestones
                ),
                milestones_at=func.greatest(ReleaseView.milestones_at, at),
            )
        )


async def on_release_event(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, rl.ReleaseEventData)
    await _release_snapshot(session, data)
    buffer(session).late.releases.add(data.release_id)
    await _touch(session, event, data.services)
    if isinstance(data, rl.ReleaseDeployed):
        services = list(data.services)
        if len(data.deployment_ids) == len(services):
            keys = [f"release-svc:{d}" for d in data.deployment_ids]
        else:
            keys = [f"release-svc:{data.deployment_id or event.id}:{s}" for s in services]
        await _insert_new(
            session,
            DeploymentReport,
            [
                {
                    "report_key": key,
                    "service": service,
                    "environment": env_name(data.environment),
                    "at": data.deployed_at,
                    "outcome": data.outcome,
                    "commit": data.commit,
                    "version": data.version,
                    "source": data.source,
                    "change_id": None,
                    "release_id": data.release_id,
                }
                for key, service in zip(keys, services, strict=True)
            ],
        )
    elif isinstance(data, rl.ReleaseRolledBack):
        await _insert_new(
            session,
            RollbackFact,
            [
                {
                    "rollback_key": f"release-svc:{event.id}:{service}",
                    "service": service,
                    "environment": env_name(data.environment),
                    "at": data.rolled_back_at,
                    "version": data.version,
                    "release_id": data.release_id,
                }
                for service in data.services
            ],
        )


async def on_catalogue_event(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    match data:
        case rl.ServiceRegistered():
            await _upsert_latest(
                session,
                CatalogueService,
                {
                    "name": data.name,
                    "team": data.team,
                    "repositories": list(data.repositories),
                    "artifacts": list(data.artifacts),
                    "registered_at": data.registered_at,
                },
                keys=["name"],
                stamp="registered_at",
            )
        case rl.EnvironmentDefined():
            await _upsert_latest(
                session,
                EnvironmentView,
                {
                    "name": env_name(data.name),
                    "rank": data.rank,
                    "protected": data.protected,
                    "production": data.production,
                    "defined_at": data.defined_at,
                },
                keys=["name"],
                stamp="defined_at",
            )
        case rl.WindowDefined():
            await _upsert_latest(
                session,
                WindowView,
                {
                    "window_id": data.window_id,
                    "environment": env_name(data.environment),
                    "days": list(data.days),
                    "start": data.start,
                    "end": data.end,
                    "timezone": data.timezone,
                    "defined_at": data.defined_at,
                },
                keys=["window_id"],
                stamp="defined_at",
            )
        case rl.WindowRemoved():
            stmt = pg_insert(WindowView).values(
                window_id=data.window_id,
                environment=env_name(data.environment),
                days=[],
                start=time(0),
                end=time(0),
                timezone="UTC",
                defined_at=datetime.min.replace(tzinfo=UTC),
                removed_at=data.removed_at,
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[WindowView.window_id],
                    set_={"removed_at": func.greatest(WindowView.removed_at, stmt.excluded.removed_at)},
                )
            )
        case rl.FreezeScheduled():
            stmt = pg_insert(FreezeView).values(
                freeze_id=data.freeze_id,
                name=data.name,
                start=data.start,
                end=data.end,
                environments=[env_name(e) for e in data.environments],
                services=list(data.services),
                reason=data.reason,
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[FreezeView.freeze_id],
                    set_={k: stmt.excluded[k] for k in ("name", "start", "end", "environments", "services", "reason")},
                )
            )
        case rl.FreezeLifted():
            stmt = pg_insert(FreezeView).values(
                freeze_id=data.freeze_id, name=data.name, environments=[], services=[], lifted_at=data.lifted_at
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[FreezeView.freeze_id],
                    set_={"lifted_at": func.least(FreezeView.lifted_at, stmt.excluded.lifted_at)},
                )
            )
        case rl.GateEvaluated():
            buffer(session).late.fact(data.service, data.evaluated_at)
            await _insert_new(
                session,
                GateDecisionRecord,
                [
                    {
                        "decision_id": data.decision_id,
                        "service": data.service,
                        "environment": env_name(data.environment),
                        "version": data.version,
                        "commit": data.commit,
                        "decision": data.decision,
                        "reasons": sorted({r.code for r in data.reasons}),
                        "change_id": data.change_id,
                        "evaluated_at": data.evaluated_at,
                    }
                ],
            )


def release_subscription(on_closed: ReleaseClosedHook | None = None) -> Subscription:
    async def on_release(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        await on_release_event(session, event, data)
        if on_closed is not None and isinstance(data, rl.ReleaseClosed):
            await on_closed(session, data)

    handlers: dict[str, Handler] = {}
    for model in (
        rl.ReleasePlanned,
        rl.ReleaseChanged,
        rl.ReleaseDeploymentRequested,
        rl.ReleaseDeployed,
        rl.ReleaseRolledBack,
        rl.ReleaseCancelled,
        rl.ReleaseEarlyLifeSupportStarted,
        rl.ReleaseClosed,
    ):
        handlers[model.event_type] = on_release
    for other in (
        rl.ServiceRegistered,
        rl.EnvironmentDefined,
        rl.WindowDefined,
        rl.WindowRemoved,
        rl.FreezeScheduled,
        rl.FreezeLifted,
    ):
        handlers[other.event_type] = on_catalogue_event
    handlers[rl.GateEvaluated.event_type] = on_catalogue_event
    return Subscription(group=RELEASE_GROUP, topics=[RELEASE_TOPIC], handlers=handlers)


# --- pipeline-svc ---

DEFAULT_BRANCH_GUESSES = ("main", "master")


def _on_default_branch(data: pl.CommitsPushed) -> bool:
    """Only pushes to the default branch count; when the source did not say which it is, main or master."""
    branch = data.branch.removeprefix("refs/heads/")
    if data.default_branch is not None:
        return branch == data.default_branch.removeprefix("refs/heads/")
    return branch in DEFAULT_BRANCH_GUESSES


async def on_pipeline_event(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    dora_facts = (
        pl.DeploymentObserved,
        pl.RollbackObserved,
        pl.IncidentDetected,
        pl.IncidentResolved,
        pl.CommitsPushed,
        pl.CodeChangeMerged,
    )
    if isinstance(data, dora_facts):
        await _touch(session, event, [data.service])
    late = buffer(session).late
    match data:
        case pl.DeploymentObserved():
            late.fact(data.service, data.at, data.version)
            key = ":".join((data.source, data.service, data.source_id, data.outcome, data.at.isoformat()))
            buffer(session).reports.setdefault(
                key,
                {
                    "report_key": key,
                    "service": data.service,
                    "environment": env_name(data.environment),
                    "at": data.at,
                    "outcome": data.outcome,
                    "commit": data.commit,
                    "version": data.version,
                    "source": data.source,
                    "change_id": data.change_id,
                    "release_id": None,
                },
            )
        case pl.RollbackObserved():
            late.fact(data.service, data.at, data.version)
            await _insert_new(
                session,
                RollbackFact,
                [
                    {
                        "rollback_key": f"{data.source}:{data.service}:{data.source_id}"
                        if data.source_id
                        else event.id,
                        "service": data.service,
                        "environment": env_name(data.environment),
                        "at": data.at,
                        "version": data.version,
                        "release_id": None,
                    }
                ],
            )
        case pl.IncidentDetected() | pl.IncidentResolved():
            detected = isinstance(data, pl.IncidentDetected)
            late.fact(data.service, data.at, data.version)
            late.incidents.add(data.incident_id)
            stmt = pg_insert(IncidentFact).values(
                incident_id=data.incident_id,
                service=data.service,
                environment=env_name(data.environment),
                title=getattr(data, "title", None),
                severity=data.severity,
                version=data.version,
                commit=data.commit,
                started_at=data.at if detected else None,
                resolved_at=None if detected else data.at,
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[IncidentFact.incident_id],
                    set_={
                        "title": func.coalesce(IncidentFact.title, stmt.excluded.title),
                        "severity": func.coalesce(IncidentFact.severity, stmt.excluded.severity),
                        "version": func.coalesce(IncidentFact.version, stmt.excluded.version),
                        "commit": func.coalesce(IncidentFact.commit, stmt.excluded.commit),
                        "started_at": func.least(IncidentFact.started_at, stmt.excluded.started_at),
                        "resolved_at": func.least(IncidentFact.resolved_at, stmt.excluded.resolved_at),
                    },
                )
            )
        case pl.CommitsPushed():
            if not _on_default_branch(data) or not data.commits:
                return
            buf = buffer(session)
            for c in data.commits:
                _merge_commit(
                    buf,
                    {
                        "service": data.service,
                        "commit_key": f"sha:{c.sha}",
                        "sha": c.sha,
                        "started_at": c.timestamp,
                        "pushed_at": data.pushed_at,
                    },
                )
        case pl.CodeChangeMerged():
            # METRICS.md: CDEvents change.merged counts (a GitHub/GitLab merge arrives as a push as well)
            if not data.source.lower().startswith("cdevents"):
                return
            _merge_commit(
                buffer(session),
                {
                    "service": data.service,
                    "commit_key": f"merged:{data.change_id}",
                    "sha": data.commit,
                    "started_at": data.started_at or data.merged_at,
                    "pushed_at": data.merged_at,
                },
            )
        case pl.PipelineRunFinished():
            await _upsert_latest(
                session,
                PipelineRun,
                {
                    "run_key": f"{data.source}:{data.service}:{data.pipeline}:{data.run_id}",
                    "service": data.service,
                    "pipeline": data.pipeline,
                    "run_id": data.run_id,
                    "outcome": data.outcome,
                    "queued_at": data.queued_at,
                    "started_at": data.started_at,
                    "duration_s": data.duration_s,
                    "queue_s": data.queue_s,
                    "finished_at": data.finished_at,
                    "commit": data.commit,
                    "source": data.source,
                },
                keys=["run_key"],
                stamp="finished_at",
            )
        case pl.TestsReported():
            late.fact(data.service, None, data.version)
            await _insert_new(
                session,
                TestEvidence,
                [
                    {
                        "evidence_key": event.id,
                        "service": data.service,
                        "version": data.version,
                        "commit": data.commit,
                        "suite": data.suite,
                        "passed": data.counts.passed,
                        "failed": data.counts.failed,
                        "skipped": data.counts.skipped,
                        "outcome": data.outcome,
                        "reported_at": data.reported_at,
                    }
                ],
            )
        case pl.ScanReported():
            late.fact(data.service, None, data.version)
            await _insert_new(
                session,
                ScanEvidence,
                [
                    {
                        "evidence_key": event.id,
                        "service": data.service,
                        "version": data.version,
                        "commit": data.commit,
                        "tool": data.tool,
                        "critical": data.findings.critical,
                        "high": data.findings.high,
                        "medium": data.findings.medium,
                        "low": data.findings.low,
                        "reported_at": data.reported_at,
                    }
                ],
            )


def pipeline_subscription() -> Subscription:
    models = (
        pl.DeploymentObserved,
        pl.RollbackObserved,
        pl.IncidentDetected,
        pl.IncidentResolved,
        pl.CommitsPushed,
        pl.CodeChangeMerged,
        pl.PipelineRunFinished,
        pl.TestsReported,
        pl.ScanReported,
    )
    # the busiest topic: one batch handler call (and one span) per batch; the frequent facts go through the buffer
    return Subscription(
        group=PIPELINE_GROUP,
        topics=[PIPELINE_TOPIC],
        batch_handlers={m.event_type: on_pipeline_events for m in models},
    )


async def on_pipeline_events(session: AsyncSession, events: Sequence[Received]) -> None:
    for event, data in events:
        await on_pipeline_event(session, event, data)


# --- platform ---


async def on_heartbeat(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, PlatformHeartbeatSent)
    await _upsert_latest(
        session,
        Heartbeat,
        {
            "service": data.service,
            "instance": data.instance or "-",
            "at": data.at,
            "outbox_backlog": data.outbox_backlog,
            "oldest_unpublished_age_seconds": data.oldest_unpublished_age_seconds,
            "dlq_counts": dict(data.dlq_counts),
            "consumer_lag": dict(data.consumer_lag),
        },
        keys=["service", "instance"],
        stamp="at",
    )


def platform_subscription() -> Subscription:
    return Subscription(
        group=PLATFORM_GROUP, topics=[PLATFORM_TOPIC], handlers={PlatformHeartbeatSent.event_type: on_heartbeat}
    )
