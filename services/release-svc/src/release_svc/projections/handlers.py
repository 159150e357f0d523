"""Consumers of change-svc's and pipeline-svc's events into release-svc's projections.

Every handler is an upsert or an insert-if-absent, so a redelivery or an out-of-order arrival leaves the same
projection. Change states only move forward (``states.STATE_RANK``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.audit import Actor
from greenzone_common.consumer import Handler, Subscription
from greenzone_common.contracts import CHANGE_TOPIC, PIPELINE_TOPIC
from greenzone_common.contracts.base import EventData
from greenzone_common.contracts.change import (
    ChangeApproved,
    ChangeCancelled,
    ChangeClosed,
    ChangeCompleted,
    ChangeCreated,
    ChangeEventData,
    ChangeRejected,
    ChangeReviewed,
    ChangeStarted,
    ChangeSubmitted,
)
from greenzone_common.contracts.pipeline import (
    ArtifactPublished,
    CodeChangeMerged,
    CommitsPushed,
    DeploymentObserved,
    IncidentDetected,
    IncidentResolved,
    PipelineRunFinished,
    RollbackObserved,
    ScanReported,
    TestsReported,
)
from greenzone_common.envelope import ReceivedEvent
from greenzone_common.outbox import Outbox
from release_svc.catalogue import service as catalogue
from release_svc.environments.models import Environment
from release_svc.environments.policy import canonical_environment
from release_svc.projections.models import ChangeView, Deployment, Incident, Rollback, ScanReport, TestReport
from release_svc.projections.states import STATE_RANK
from release_svc.releases import service as releases
from release_svc.releases.models import Release
from release_svc.releases.policy import FINISHED

CHANGES_GROUP = "release-svc.changes"
PIPELINE_GROUP = "release-svc.pipeline"

# --- change-svc ---

_STATE_OF: dict[type[ChangeEventData], str] = {
    ChangeCreated: "draft",
    ChangeApproved: "approved",
    ChangeRejected: "rejected",
    ChangeStarted: "implementing",
    ChangeCompleted: "completed",
    ChangeCancelled: "cancelled",
    ChangeClosed: "closed",
    ChangeReviewed: "closed",
}
_OPTIONAL = ("title", "version", "release_id", "planned_start", "planned_end")


def _when(event: ReceivedEvent, data: EventData) -> datetime:
    for name in (
        "created_at",
        "submitted_at",
        "approved_at",
        "rejected_at",
        "started_at",
        "completed_at",
        "cancelled_at",
        "closed_at",
        "reviewed_at",
    ):
        value = getattr(data, name, None)
        if isinstance(value, datetime):
            return value
    assert event.time is not None
    return event.time


async def on_change_event(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, ChangeEventData)
    state = data.state if isinstance(data, ChangeSubmitted) else _STATE_OF[type(data)]  # type: ignore[attr-defined]
    values: dict[str, Any] = {
        "change_id": data.change_id,
        "number": data.number,
        "type": data.type,
        "service": data.service,
        "environment": canonical_environment(data.environment),
        "state": state,
        "state_rank": STATE_RANK[state],
        "auto_created": bool(getattr(data, "auto_created", False)),
        "updated_at": _when(event, data),
    }
    for name in _OPTIONAL:
        value = getattr(data, name, None)
        if value is not None:
            values[name] = value
    stmt = pg_insert(ChangeView).values(values)
    forward = stmt.excluded.state_rank >= ChangeView.state_rank
    update: dict[str, Any] = {
        "number": stmt.excluded.number,
        "type": stmt.excluded.type,
        "service": stmt.excluded.service,
        "environment": stmt.excluded.environment,
        "state": case((forward, stmt.excluded.state), else_=ChangeView.state),
        "state_rank": func.greatest(stmt.excluded.state_rank, ChangeView.state_rank),
        "updated_at": func.greatest(stmt.excluded.updated_at, ChangeView.updated_at),
    }
    for name in _OPTIONAL:
        if name in values:
            update[name] = stmt.excluded[name]
    await session.execute(stmt.on_conflict_do_update(index_elements=[ChangeView.change_id], set_=update))


def change_subscription() -> Subscription:
    handlers: dict[str, Handler] = {model.event_type: on_change_event for model in (*_STATE_OF, ChangeSubmitted)}
    return Subscription(group=CHANGES_GROUP, topics=[CHANGE_TOPIC], handlers=handlers)


# --- pipeline-svc ---


async def on_tests_reported(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, TestsReported)
    await session.execute(
        pg_insert(TestReport)
        .values(
            ce_id=event.id,
            service=data.service,
            version=data.version,
            commit=data.commit,
            suite=data.suite,
            outcome=data.outcome,
            passed=data.counts.passed,
            failed=data.counts.failed,
            skipped=data.counts.skipped,
            reported_at=data.reported_at,
        )
        .on_conflict_do_nothing()
    )


async def on_scan_reported(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, ScanReported)
    await session.execute(
        pg_insert(ScanReport)
        .values(
            ce_id=event.id,
            service=data.service,
            version=data.version,
            commit=data.commit,
            tool=data.tool,
            critical=data.findings.critical,
            high=data.findings.high,
            medium=data.findings.medium,
            low=data.findings.low,
            reported_at=data.reported_at,
        )
        .on_conflict_do_nothing()
    )


async def _matching_releases(
    session: AsyncSession, service: str, version: str | None, change_id: str | None
) -> list[Release]:
    """Open releases of the service that the deployment is about: it names one of their changes, or it deploys
    their version."""
    about = []
    if change_id:
        about.append(Release.changes.contains([change_id]))
    if version:
        about.append(Release.version == version)
    if not about:
        return []
    stmt = (
        select(Release)
        .where(or_(*about), Release.services.contains([service]), Release.state.not_in(FINISHED))
        .order_by(Release.created_at)
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())


def deployment_observed(outbox: Outbox, els_period: timedelta) -> Handler:
    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        assert isinstance(data, DeploymentObserved)
        environment = canonical_environment(data.environment)
        values = {
            "id": event.id,
            "service": data.service,
            "environment": environment,
            "version": data.version,
            "commit": data.commit,
            "outcome": data.outcome,
            "at": data.at,
            "source": data.source,
            "source_id": data.source_id,
            "change_id": data.change_id,
        }
        stmt = pg_insert(Deployment).values(values)
        # the same deployment reported again (e.g. a later status): keep one row, the latest outcome wins
        upsert = stmt.on_conflict_do_update(
            constraint="uq_deployments_source_source_id",
            set_={k: stmt.excluded[k] for k in ("version", "commit", "outcome", "at", "change_id")},
        ).returning(Deployment.id)
        deployment_id = (await session.execute(upsert)).scalar_one()
        deployment = await session.get(Deployment, deployment_id, populate_existing=True)
        assert deployment is not None
        env = await session.get(Environment, environment)
        if env is None or deployment.release_id is not None:
            return
        for release in await _matching_releases(session, data.service, data.version, data.change_id):
            if await _already_recorded(session, release.id, data.service, environment, data.outcome):
                continue  # release-svc recorded this deployment itself; the tool's report confirms it
            deployment.release_id = release.id
            await releases.apply_deployment(
                session,
                outbox,
                release,
                env,
                outcome=data.outcome,
                commit=data.commit,
                deployments=[deployment],
                by=Actor.from_event(event),
                at=data.at,
                els_period=els_period,
                source=data.source,
            )
            break

    return handle


async def _already_recorded(
    session: AsyncSession, release_id: str, service: str, environment: str, outcome: str
) -> bool:
    found = await session.execute(
        select(Deployment.id)
        .where(
            Deployment.release_id == release_id,
            Deployment.service == service,
            Deployment.environment == environment,
            Deployment.outcome == outcome,
        )
        .limit(1)
    )
    return found.first() is not None


def rollback_observed(outbox: Outbox) -> Handler:
    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        assert isinstance(data, RollbackObserved)
        environment = canonical_environment(data.environment)
        await session.execute(
            pg_insert(Rollback)
            .values(
                id=event.id,
                service=data.service,
                environment=environment,
                version=data.version,
                at=data.at,
                source=data.source or "pipeline",
                release_id=None,
                reason="",
            )
            .on_conflict_do_nothing()
        )
        env = await session.get(Environment, environment)
        if env is None:
            return
        # the release live in that environment is the one rolled back (not the version rolled back to)
        live = (
            (
                await session.execute(
                    select(Release)
                    .join(Deployment, Deployment.release_id == Release.id)
                    .where(
                        Deployment.service == data.service,
                        Deployment.environment == environment,
                        Deployment.outcome == "success",
                        Release.state.not_in(FINISHED),
                        Release.version != (data.version or ""),
                    )
                    .order_by(Deployment.at.desc())
                    .limit(1)
                    .with_for_update(of=Release)
                )
            )
            .scalars()
            .first()
        )
        if live is not None:
            await releases.rollback(
                session,
                outbox,
                live,
                env,
                "rolled back (reported by a tool)",
                Actor.from_event(event),
                data.at,
                data.source or "pipeline",
            )

    return handle


async def on_incident_detected(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, IncidentDetected)
    stmt = pg_insert(Incident).values(
        incident_id=data.incident_id,
        service=data.service,
        environment=canonical_environment(data.environment),
        severity=data.severity,
        version=data.version,
        detected_at=data.at,
        resolved_at=None,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Incident.incident_id],
            set_={"detected_at": stmt.excluded.detected_at, "severity": stmt.excluded.severity},
        )
    )


async def on_incident_resolved(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, IncidentResolved)
    stmt = pg_insert(Incident).values(
        incident_id=data.incident_id,
        service=data.service,
        environment=canonical_environment(data.environment),
        severity=data.severity,
        version=data.version,
        detected_at=None,
        resolved_at=data.at,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Incident.incident_id], set_={"resolved_at": stmt.excluded.resolved_at}
        )
    )


def repository_seen(outbox: Outbox) -> Handler:
    """Runs, pushes and merges name a repository: an unknown one becomes a service (API.md)."""

    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        repository = getattr(data, "repository", None)
        at = event.time or datetime.now(UTC)
        await catalogue.ensure_known(
            session,
            outbox,
            service_name=str(data.service),
            repository=repository,
            by=Actor.from_event(event),
            now=at,  # type: ignore[attr-defined]
        )

    return handle


def artifact_seen(outbox: Outbox) -> Handler:
    async def handle(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
        assert isinstance(data, ArtifactPublished)
        await catalogue.ensure_known(
            session,
            outbox,
            service_name=data.service,
            artifact=data.name,
            by=Actor.from_event(event),
            now=data.published_at,
        )

    return handle


def pipeline_subscription(outbox: Outbox, els_period: timedelta) -> Subscription:
    seen = repository_seen(outbox)
    handlers: dict[str, Handler] = {
        TestsReported.event_type: on_tests_reported,
        ScanReported.event_type: on_scan_reported,
        DeploymentObserved.event_type: deployment_observed(outbox, els_period),
        RollbackObserved.event_type: rollback_observed(outbox),
        IncidentDetected.event_type: on_incident_detected,
        IncidentResolved.event_type: on_incident_resolved,
        PipelineRunFinished.event_type: seen,
        CommitsPushed.event_type: seen,
        CodeChangeMerged.event_type: seen,
        ArtifactPublished.event_type: artifact_seen(outbox),
    }
    return Subscription(group=PIPELINE_GROUP, topics=[PIPELINE_TOPIC], handlers=handlers)
