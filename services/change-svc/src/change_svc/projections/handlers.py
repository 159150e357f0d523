"""Consumers of release-svc's and pipeline-svc's events.

Each handler runs inside the inbox transaction (exactly-once effects). Facts are upserted keyed by their identity,
newest wins, so a redelivery or an out-of-order arrival changes nothing. Transitions of changes go through the same
use cases as the HTTP API (``changes.service``): same lifecycle checks, same audit trail, same outbox events; a
transition the change's state does not allow is skipped (a deployment of a change that was never approved does not
complete it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy import or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from change_svc.changes import service
from change_svc.changes.models import Change
from change_svc.changes.schemas import ChangeCreate
from change_svc.projections.models import (
    DeploymentView,
    EnvironmentView,
    FreezeView,
    ReleaseView,
    RollbackView,
    ScanResult,
    TestResult,
)
from greenzone_common.consumer import Handler, Subscription
from greenzone_common.contracts import PIPELINE_TOPIC, RELEASE_TOPIC
from greenzone_common.contracts.base import EventData
from greenzone_common.contracts.pipeline import DeploymentObserved, RollbackObserved, ScanReported, TestsReported
from greenzone_common.contracts.release import (
    EnvironmentDefined,
    FreezeLifted,
    FreezeScheduled,
    GateEvaluated,
    ReleaseCancelled,
    ReleaseChanged,
    ReleaseClosed,
    ReleaseDeployed,
    ReleaseDeploymentRequested,
    ReleaseEarlyLifeSupportStarted,
    ReleaseEventData,
    ReleasePlanned,
    ReleaseRolledBack,
)
from greenzone_common.envelope import ReceivedEvent
from greenzone_common.outbox import Outbox

log = structlog.get_logger(__name__)

RELEASE_GROUP = "change-svc.release"
PIPELINE_GROUP = "change-svc.pipeline"
OUTCOMES = {"success": "successful", "failure": "failed"}


async def _upsert(
    session: AsyncSession, model: Any, values: dict[str, Any], keys: Sequence[str], time_column: str
) -> None:
    stmt = pg_insert(model).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={k: stmt.excluded[k] for k in values if k not in keys},
        where=getattr(model.__table__.c, time_column) <= stmt.excluded[time_column],
    )
    await session.execute(stmt)


# --- catalogue facts -------------------------------------------------------------------------------------------------


async def on_environment_defined(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, EnvironmentDefined)
    values = {
        "name": data.name,
        "rank": data.rank,
        "protected": data.protected,
        "production": data.production,
        "defined_at": data.defined_at,
    }
    await _upsert(session, EnvironmentView, values, ["name"], "defined_at")


async def on_freeze_scheduled(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, FreezeScheduled)
    stmt = pg_insert(FreezeView).values(
        freeze_id=data.freeze_id,
        name=data.name,
        start=data.start,
        end=data.end,
        environments=data.environments,
        services=data.services,
        reason=data.reason,
        scheduled_at=data.scheduled_at,
    )
    # a lift that arrived first stays lifted
    stmt = stmt.on_conflict_do_update(
        index_elements=["freeze_id"],
        set_={
            k: stmt.excluded[k] for k in ("name", "start", "end", "environments", "services", "reason", "scheduled_at")
        },
    )
    await session.execute(stmt)


async def on_freeze_lifted(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, FreezeLifted)
    stmt = pg_insert(FreezeView).values(
        freeze_id=data.freeze_id,
        name=data.name or "",
        environments=[],
        services=[],
        reason="",
        lifted_at=data.lifted_at,
    )
    stmt = stmt.on_conflict_do_update(index_elements=["freeze_id"], set_={"lifted_at": stmt.excluded.lifted_at})
    await session.execute(stmt)


# --- evidence --------------------------------------------------------------------------------------------------------


async def on_tests_reported(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, TestsReported)
    values = {
        "service": data.service,
        "version": data.version or "",
        "commit": data.commit or "",
        "suite": data.suite or data.source or "tests",
        "outcome": data.outcome,
        "passed": data.counts.passed,
        "failed": data.counts.failed,
        "skipped": data.counts.skipped,
        "reported_at": data.reported_at,
    }
    await _upsert(session, TestResult, values, ["service", "version", "commit", "suite"], "reported_at")


async def on_scan_reported(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, ScanReported)
    values = {
        "service": data.service,
        "version": data.version or "",
        "commit": data.commit or "",
        "tool": data.tool or data.source or "scan",
        "critical": data.findings.critical,
        "high": data.findings.high,
        "medium": data.findings.medium,
        "low": data.findings.low,
        "reported_at": data.reported_at,
    }
    await _upsert(session, ScanResult, values, ["service", "version", "commit", "tool"], "reported_at")


# --- the gate drafts changes -----------------------------------------------------------------------------------------


async def _lock_versions(session: AsyncSession, services: Iterable[str], version: str | None) -> None:
    """Serialise the release consumer and the pipeline consumer on (service, version): each of them checks the
    other's projection after writing its own, and without the lock both could miss each other (write skew)."""
    if not version:
        return
    for name in sorted(set(services)):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"change-svc.deploy:{name}:{version}"}
        )


def _outbox(app: FastAPI) -> Outbox:
    box: Outbox = app.state.runtime.outbox
    return box


def on_gate_evaluated(app: FastAPI) -> Handler:
    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        assert isinstance(data, GateEvaluated)
        if data.decision != "deny" or not data.change_id:
            return
        if await session.get(Change, data.change_id) is not None:
            return  # the change exists (a redelivery, or a denial naming an existing change)
        target = data.version or (data.commit[:12] if data.commit else "an unknown version")
        reasons = "; ".join(f"{r.code}: {r.message}" for r in data.reasons)
        body = ChangeCreate(
            title=f"Deploy {data.service} {target} to {data.environment}"[:200],
            description=f"Drafted by the gate (decision {data.decision_id}): {reasons}",
            type="normal",
            service=data.service,
            environment=data.environment,
            version=data.version,
            commits=[data.commit] if data.commit else [],
        )
        gate = {
            "decision_id": data.decision_id,
            "reasons": [r.model_dump(mode="json") for r in data.reasons],
            "version": data.version,
            "commit": data.commit,
            "evaluated_at": data.evaluated_at.isoformat(),
        }
        await service.create_change(
            session,
            _outbox(app),
            body,
            service.Actor.from_event(event, data.requested_by or "pipeline"),
            change_id=data.change_id,
            auto_created=True,
            evidence={"gate": gate},
            gate_decision_id=data.decision_id,
        )

    return handle


# --- releases and deployments complete changes -----------------------------------------------------------------------


async def _upsert_release(session: AsyncSession, data: ReleaseEventData, at: Any) -> None:
    values = {
        "release_id": data.release_id,
        "version": data.version,
        "services": data.services,
        "changes": data.changes,
        "state": data.state,
        "updated_at": at,
    }
    await _upsert(session, ReleaseView, values, ["release_id"], "updated_at")


async def _release_changes(
    session: AsyncSession,
    release_ids: Iterable[str],
    change_ids: Iterable[str],
    service_names: Iterable[str] | None,
    environment: str,
) -> list[Change]:
    """The changes a release (or releases) bundles for ``environment`` (and for one of ``service_names``)."""
    ids, releases = list(set(change_ids)), list(set(release_ids))
    clauses = []
    if ids:
        clauses.append(Change.id.in_(ids))
    if releases:
        clauses.append(Change.release_id.in_(releases))
    if not clauses:
        return []
    stmt = select(Change).where(or_(*clauses), Change.environment == environment)
    if service_names is not None:
        stmt = stmt.where(Change.service.in_(list(service_names)))
    rows = (await session.execute(stmt.order_by(Change.number).with_for_update())).scalars()
    return list(rows)


async def _deliver(
    session: AsyncSession, outbox: Outbox, changes: Iterable[Change], outcome: str, actor: service.Actor, ref: str
) -> None:
    """A deployment with an outcome: approved changes are started first, then completed with the outcome."""
    for change in changes:
        if change.state == "approved":
            await service.start(session, outbox, change.id, actor, change=change)
        if change.state == "implementing":
            await service.complete(session, outbox, change.id, outcome, actor, change=change, deployment_ref=ref)


def on_release_fact(app: FastAPI) -> Handler:
    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        assert isinstance(data, ReleaseEventData)
        await _lock_versions(session, data.services, data.version)
        await _upsert_release(session, data, event.time or _event_time(data))
        await _catch_up(session, _outbox(app), event, data)

    return handle


async def _catch_up(session: AsyncSession, outbox: Outbox, event: ReceivedEvent, data: ReleaseEventData) -> None:
    """pipeline-svc's topic and release-svc's are consumed independently: a deployment of the release's version
    may have been observed before the release (or the change's place in it) was known. Apply it now."""
    if data.state == "cancelled" or not data.services:
        return
    observed = (
        await session.execute(
            select(DeploymentView)
            .where(DeploymentView.service.in_(data.services), DeploymentView.version == data.version)
            .order_by(DeploymentView.at)
        )
    ).scalars()
    for deployment in observed:
        changes = await _release_changes(
            session, [data.release_id], data.changes, [deployment.service], deployment.environment
        )
        actor = service.Actor.from_event(event, "pipeline-svc")
        await _deliver(session, outbox, changes, OUTCOMES[deployment.outcome], actor, deployment.ref)


def _event_time(data: EventData) -> Any:
    for name in ("planned_at", "changed_at", "cancelled_at", "closed_at", "started_at", "deployed_at"):
        value = getattr(data, name, None)
        if value is not None:
            return value
    raise ValueError("release event without a time")


def on_release_deployment_requested(app: FastAPI) -> Handler:
    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        assert isinstance(data, ReleaseDeploymentRequested)
        await _upsert_release(session, data, data.requested_at)
        actor = service.Actor.from_event(event, data.requested_by or "release-svc")
        outbox = _outbox(app)
        for change in await _release_changes(
            session, [data.release_id], data.changes, data.services or None, data.environment
        ):
            if change.state == "approved":
                await service.start(session, outbox, change.id, actor, change=change)

    return handle


def on_release_deployed(app: FastAPI) -> Handler:
    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        assert isinstance(data, ReleaseDeployed)
        await _upsert_release(session, data, data.deployed_at)
        changes = await _release_changes(
            session, [data.release_id], data.changes, data.services or None, data.environment
        )
        ref = f"release:{data.deployment_id or data.release_id}"
        actor = service.Actor.from_event(event, data.deployed_by or "release-svc")
        await _deliver(session, _outbox(app), changes, OUTCOMES[data.outcome], actor, ref)

    return handle


def on_release_rolled_back(app: FastAPI) -> Handler:
    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        assert isinstance(data, ReleaseRolledBack)
        await _upsert_release(session, data, data.rolled_back_at)
        actor = service.Actor.from_event(event, data.rolled_back_by or "release-svc")
        outbox = _outbox(app)
        for change in await _release_changes(
            session, [data.release_id], data.changes, data.services or None, data.environment
        ):
            await service.mark_rolled_back(session, outbox, change, actor, f"release:{data.release_id}")

    return handle


def on_deployment_observed(app: FastAPI) -> Handler:
    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        assert isinstance(data, DeploymentObserved)
        await _lock_versions(session, [data.service], data.version)
        ref = f"{data.source}:{data.source_id}"
        values = {
            "ref": ref,
            "service": data.service,
            "environment": data.environment,
            "version": data.version,
            "commit": data.commit,
            "outcome": data.outcome,
            "at": data.at,
        }
        await _upsert(session, DeploymentView, values, ["ref"], "at")
        changes: list[Change] = []
        if data.change_id:
            named = (
                await session.execute(select(Change).where(Change.id == data.change_id).with_for_update())
            ).scalar_one_or_none()
            changes = [named] if named is not None else []
        elif data.version:
            releases = (
                await session.execute(
                    select(ReleaseView.release_id, ReleaseView.changes).where(
                        ReleaseView.version == data.version, ReleaseView.services.contains([data.service])
                    )
                )
            ).all()
            bundled = [c for _, ids in releases for c in ids]
            changes = await _release_changes(
                session, [r for r, _ in releases], bundled, [data.service], data.environment
            )
            # and changes that name the deployed version themselves
            own = (
                await session.execute(
                    select(Change)
                    .where(
                        Change.service == data.service,
                        Change.environment == data.environment,
                        Change.version == data.version,
                        Change.state.in_(["approved", "implementing"]),
                    )
                    .with_for_update()
                )
            ).scalars()
            changes += [c for c in own if c not in changes]
        actor = service.Actor.from_event(event, f"pipeline-svc:{data.source}")
        await _deliver(session, _outbox(app), changes, OUTCOMES[data.outcome], actor, ref)

    return handle


def on_rollback_observed(app: FastAPI) -> Handler:
    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        assert isinstance(data, RollbackObserved)
        ref = f"{data.source}:{data.source_id}" if data.source and data.source_id else f"event:{event.id}"
        values = {
            "ref": ref,
            "service": data.service,
            "environment": data.environment,
            "version": data.version,
            "at": data.at,
        }
        await _upsert(session, RollbackView, values, ["ref"], "at")
        # the deployment rolled back: the latest successful one of that service and environment before the rollback
        latest = (
            await session.execute(
                select(DeploymentView.ref)
                .where(
                    DeploymentView.service == data.service,
                    DeploymentView.environment == data.environment,
                    DeploymentView.outcome == "success",
                    DeploymentView.at <= data.at,
                )
                .order_by(DeploymentView.at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        clauses = [Change.state == "implementing"]
        if latest is not None:
            clauses.append(Change.deployment_ref == latest)
        rows = (
            await session.execute(
                select(Change)
                .where(Change.service == data.service, Change.environment == data.environment, or_(*clauses))
                .with_for_update()
            )
        ).scalars()
        actor = service.Actor.from_event(event, f"pipeline-svc:{data.source or 'unknown'}")
        outbox = _outbox(app)
        for change in rows:
            await service.mark_rolled_back(session, outbox, change, actor, ref)

    return handle


def subscriptions(app: FastAPI) -> list[Subscription]:
    release_fact = on_release_fact(app)
    release: dict[str, Handler] = {
        EnvironmentDefined.event_type: on_environment_defined,
        FreezeScheduled.event_type: on_freeze_scheduled,
        FreezeLifted.event_type: on_freeze_lifted,
        GateEvaluated.event_type: on_gate_evaluated(app),
        ReleasePlanned.event_type: release_fact,
        ReleaseChanged.event_type: release_fact,
        ReleaseCancelled.event_type: release_fact,
        ReleaseClosed.event_type: release_fact,
        ReleaseEarlyLifeSupportStarted.event_type: release_fact,
        ReleaseDeploymentRequested.event_type: on_release_deployment_requested(app),
        ReleaseDeployed.event_type: on_release_deployed(app),
        ReleaseRolledBack.event_type: on_release_rolled_back(app),
    }
    pipeline: dict[str, Handler] = {
        TestsReported.event_type: on_tests_reported,
        ScanReported.event_type: on_scan_reported,
        DeploymentObserved.event_type: on_deployment_observed(app),
        RollbackObserved.event_type: on_rollback_observed(app),
    }
    return [
        Subscription(group=RELEASE_GROUP, topics=[RELEASE_TOPIC], handlers=release),
        Subscription(group=PIPELINE_GROUP, topics=[PIPELINE_TOPIC], handlers=pipeline),
    ]
