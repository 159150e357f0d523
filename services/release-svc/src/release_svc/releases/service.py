"""Release use cases. They flush; the route or handler that owns the transaction commits."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.audit import Actor
from greenzone_common.contracts.release import (
    Milestones,
    ReleaseCancelled,
    ReleaseChanged,
    ReleaseClosed,
    ReleaseDeployed,
    ReleaseDeploymentRequested,
    ReleaseEarlyLifeSupportStarted,
    ReleasePlanned,
    ReleaseRolledBack,
)
from greenzone_common.outbox import Outbox
from release_svc.audit import service as audit
from release_svc.environments.models import Environment
from release_svc.freezes.schemas import FreezeRead
from release_svc.notifications import service as notifications
from release_svc.projections.models import Deployment, Incident, Rollback
from release_svc.releases import policy
from release_svc.releases.models import Release
from release_svc.releases.schemas import (
    DeploymentRead,
    MilestonesBody,
    ReleaseCreate,
    ReleaseRead,
    RollbackRead,
)

SOURCE = "release-svc"
#: the background task that ends early life support (its audit entries name it)
ELS_TASK = "release-svc:early-life-support"


class ReleaseNotFound(LookupError):
    pass


class ReleaseConflict(Exception):
    """The release's state (or its dependencies) does not allow the action."""

    def __init__(self, detail: str, slug: str = "conflict") -> None:
        super().__init__(detail)
        self.detail = detail
        self.slug = slug


class UnknownReleases(LookupError):
    pass


class UnknownEnvironment(LookupError):
    pass


def _base(release: Release) -> dict[str, Any]:
    return {
        "release_id": release.id,
        "name": release.name,
        "version": release.version,
        "services": list(release.services),
        "changes": list(release.changes),
        "state": release.state,
    }


async def plan(session: AsyncSession, outbox: Outbox, data: ReleaseCreate, by: Actor, now: datetime) -> Release:
    depends_on = list(dict.fromkeys(data.depends_on))
    if depends_on:
        found = set((await session.execute(select(Release.id).where(Release.id.in_(depends_on)))).scalars())
        missing = [d for d in depends_on if d not in found]
        if missing:
            raise UnknownReleases(", ".join(missing))
    release = Release(
        id=str(uuid.uuid4()),
        name=data.name,
        version=data.version,
        services=list(dict.fromkeys(data.services)),
        changes=list(dict.fromkeys(data.changes)),
        milestones=data.milestones.model_dump(mode="json"),
        notify=[str(u) for u in dict.fromkeys(data.notify)],
        notify_secret=secrets.token_urlsafe(32),
        depends_on=depends_on,
        state="planned",
        created_by=by.sub,
        created_at=now,
        updated_at=now,
    )
    session.add(release)
    await session.flush()
    await outbox.add(
        session,
        ReleasePlanned(
            **_base(release),
            milestones=Milestones.model_validate(release.milestones),
            notify=release.notify,
            depends_on=release.depends_on,
            planned_by=by.sub,
            planned_at=now,
        ),
    )
    await notifications.enqueue(session, release, "release.planned", {}, now)
    await audit.record(session, by, "release", release.id, "planned", at=now, after=audit.snapshot(release))
    return release


async def get(session: AsyncSession, release_id: str, *, lock: bool = False) -> Release:
    release = await session.get(Release, release_id, with_for_update=lock)
    if release is None:
        raise ReleaseNotFound(release_id)
    return release


def _open(release: Release) -> None:
    if release.state in policy.FINISHED:
        raise ReleaseConflict(f"Release {release.id} is {release.state}", slug="release-finished")


async def add_change(
    session: AsyncSession, outbox: Outbox, release: Release, change_id: str, by: Actor, now: datetime
) -> Release:
    _open(release)
    if change_id in release.changes:
        return release  # nothing changes, nothing to record
    before = audit.snapshot(release)
    release.changes = [*release.changes, change_id]
    release.updated_at = now
    await session.flush()
    await outbox.add(
        session, ReleaseChanged(**_base(release), added_changes=[change_id], changed_by=by.sub, changed_at=now)
    )
    await notifications.enqueue(session, release, "release.changed", {"added_changes": [change_id]}, now)
    await audit.record(
        session,
        by,
        "release",
        release.id,
        "change_added",
        at=now,
        before=before,
        after=audit.snapshot(release),
        change_id=change_id,
    )
    return release


async def reschedule(
    session: AsyncSession, outbox: Outbox, release: Release, milestones: MilestonesBody, by: Actor, now: datetime
) -> Release:
    _open(release)
    before = audit.snapshot(release)
    merged = dict(release.milestones)
    merged.update(milestones.model_dump(mode="json", exclude_unset=True))
    release.milestones = merged
    release.updated_at = now
    await session.flush()
    await outbox.add(
        session,
        ReleaseChanged(
            **_base(release), milestones=Milestones.model_validate(merged), changed_by=by.sub, changed_at=now
        ),
    )
    await notifications.enqueue(session, release, "release.schedule_changed", {"milestones": merged}, now)
    await audit.record(
        session, by, "release", release.id, "rescheduled", at=now, before=before, after=audit.snapshot(release)
    )
    return release


async def cancel(
    session: AsyncSession, outbox: Outbox, release: Release, reason: str, by: Actor, now: datetime
) -> Release:
    if release.state not in policy.CANCELLABLE:
        raise ReleaseConflict(
            f"Release {release.id} is {release.state}; only a planned or in-progress one can be cancelled"
        )
    before = audit.snapshot(release)
    release.state = "cancelled"
    release.updated_at = now
    await session.flush()
    await outbox.add(session, ReleaseCancelled(**_base(release), reason=reason, cancelled_by=by.sub, cancelled_at=now))
    await notifications.enqueue(session, release, "release.cancelled", {"reason": reason}, now)
    await audit.record(
        session,
        by,
        "release",
        release.id,
        "cancelled",
        at=now,
        before=before,
        after=audit.snapshot(release),
        reason=reason or None,
    )
    return release


async def environment(session: AsyncSession, name: str) -> Environment:
    env = await session.get(Environment, name)
    if env is None:
        raise UnknownEnvironment(name)
    return env


async def check_deployable(session: AsyncSession, release: Release, env: Environment) -> None:
    """Before the gate: a finished release deploys nowhere; production waits for the releases it depends on."""
    _open(release)
    if env.production and release.depends_on:
        rows = (
            await session.execute(select(Release.id, Release.state).where(Release.id.in_(release.depends_on)))
        ).all()
        states: dict[str, str | None] = {rid: None for rid in release.depends_on}
        states.update({rid: state for rid, state in rows})
        unmet = policy.unmet_dependencies(states)
        if unmet:
            raise ReleaseConflict(
                f"Release {release.id} depends on releases not yet in production: {', '.join(unmet)}",
                slug="release-dependency",
            )


async def deploy(
    session: AsyncSession,
    outbox: Outbox,
    release: Release,
    env: Environment,
    *,
    outcome: str,
    commit: str | None,
    decision_ids: dict[str, str],
    by: Actor,
    now: datetime,
    els_period: timedelta,
) -> list[Deployment]:
    """Record a deployment of the release's version (every service) the gate allowed."""
    _open(release)
    decision_id = next(iter(decision_ids.values()), None)
    await outbox.add(
        session,
        ReleaseDeploymentRequested(
            **_base(release),
            environment=env.name,
            commit=commit,
            decision_id=decision_id,
            requested_by=by.sub,
            requested_at=now,
        ),
    )
    deployments = []
    for service in release.services:
        deployment_id = str(uuid.uuid4())
        deployments.append(
            Deployment(
                id=deployment_id,
                service=service,
                environment=env.name,
                version=release.version,
                commit=commit,
                outcome=outcome,
                at=now,
                source=SOURCE,
                source_id=deployment_id,
                change_id=None,
                release_id=release.id,
                decision_id=decision_ids.get(service),
            )
        )
    session.add_all(deployments)
    await session.flush()
    await apply_deployment(
        session,
        outbox,
        release,
        env,
        outcome=outcome,
        commit=commit,
        deployments=deployments,
        by=by,
        at=now,
        els_period=els_period,
        source=SOURCE,
    )
    return deployments


async def apply_deployment(
    session: AsyncSession,
    outbox: Outbox,
    release: Release,
    env: Environment,
    *,
    outcome: str,
    commit: str | None,
    deployments: Sequence[Deployment],
    by: Actor,
    at: datetime,
    els_period: timedelta,
    source: str,
) -> None:
    """The release's side of a deployment (recorded here or observed by pipeline-svc): state, events, webhooks,
    and its audit entry (``by`` is the caller, or the observed event)."""
    success = outcome == "success"
    snapshot_before = audit.snapshot(release)
    before = release.state
    release.state = policy.after_deployment(before, production=env.production, success=success, els_period=els_period)
    release.updated_at = at
    ids = [d.id for d in deployments]
    await session.flush()
    await outbox.add(
        session,
        ReleaseDeployed(
            **_base(release),
            environment=env.name,
            outcome=outcome,  # type: ignore[arg-type]
            commit=commit,
            deployment_id=ids[0] if ids else None,
            deployment_ids=ids,
            decision_id=next((d.decision_id for d in deployments if d.decision_id), None),
            production=env.production,
            source=source,
            deployed_by=by.sub,
            deployed_at=at,
        ),
    )
    await notifications.enqueue(
        session,
        release,
        "release.deployed",
        {"environment": env.name, "outcome": outcome, "commit": commit, "deployments": ids, "source": source},
        at,
    )
    if policy.starts_early_life_support(before, release.state):
        release.els_started_at = at
        release.els_ends_at = at + els_period
        await session.flush()
        await outbox.add(
            session,
            ReleaseEarlyLifeSupportStarted(
                **_base(release), environment=env.name, started_at=at, ends_at=release.els_ends_at
            ),
        )
    await audit.record(
        session,
        by,
        "release",
        release.id,
        "deployed" if success else "deployment_failed",
        at=at,
        before=snapshot_before,
        after=audit.snapshot(release),
        environment=env.name,
        outcome=outcome,
        commit=commit,
        deployments=ids,
        decisions=sorted({d.decision_id for d in deployments if d.decision_id}) or None,
        source=source,
        early_life_support_started=policy.starts_early_life_support(before, release.state) or None,
    )


async def rollback(
    session: AsyncSession,
    outbox: Outbox,
    release: Release,
    env: Environment,
    reason: str,
    by: Actor,
    now: datetime,
    source: str = SOURCE,
) -> Release:
    deployed = (
        await session.execute(
            select(func.count())
            .select_from(Deployment)
            .where(
                Deployment.release_id == release.id, Deployment.environment == env.name, Deployment.outcome == "success"
            )
        )
    ).scalar_one()
    if not deployed:
        raise ReleaseConflict(f"Release {release.id} has no successful deployment to {env.name} to roll back")
    if release.state == "cancelled":
        raise ReleaseConflict(f"Release {release.id} is cancelled")
    rows = [
        {
            "id": str(uuid.uuid4()),
            "service": service,
            "environment": env.name,
            "version": release.version,
            "at": now,
            "source": source,
            "release_id": release.id,
            "reason": reason,
        }
        for service in release.services
    ]
    await session.execute(insert(Rollback), rows)
    before = audit.snapshot(release)
    release.state = policy.after_rollback(release.state, production=env.production)
    release.updated_at = now
    await session.flush()
    await outbox.add(
        session,
        ReleaseRolledBack(
            **_base(release), environment=env.name, reason=reason, rolled_back_by=by.sub, rolled_back_at=now
        ),
    )
    await notifications.enqueue(
        session, release, "release.rolledback", {"environment": env.name, "reason": reason}, now
    )
    await audit.record(
        session,
        by,
        "release",
        release.id,
        "rolled_back",
        at=now,
        before=before,
        after=audit.snapshot(release),
        environment=env.name,
        reason=reason or None,
        rollbacks=[r["id"] for r in rows],
        source=source,
    )
    return release


async def close(session: AsyncSession, outbox: Outbox, release: Release, by: Actor, now: datetime) -> Release:
    """Close the release: by a release manager, or (``by`` a background actor, ``closed_by`` null) when its early
    life support is over."""
    if release.state not in policy.CLOSABLE:
        raise ReleaseConflict(
            f"Release {release.id} is {release.state}; only a deployed release or one in early life support closes"
        )
    before = audit.snapshot(release)
    release.state = "closed"
    release.closed_at = now
    release.closed_by = by.sub
    release.updated_at = now
    await session.flush()
    await outbox.add(session, ReleaseClosed(**_base(release), closed_by=by.sub, closed_at=now))
    await notifications.enqueue(session, release, "release.closed", {"closed_by": by.sub}, now)
    await audit.record(
        session, by, "release", release.id, "closed", at=now, before=before, after=audit.snapshot(release)
    )
    return release


async def open_incidents(session: AsyncSession, release: Release) -> int:
    production = select(Environment.name).where(Environment.production).scalar_subquery()
    stmt = (
        select(func.count())
        .select_from(Incident)
        .where(
            Incident.service.in_(release.services),
            Incident.environment.in_(production),
            Incident.resolved_at.is_(None),
        )
    )
    if release.els_started_at is not None:
        stmt = stmt.where((Incident.detected_at.is_(None)) | (Incident.detected_at >= release.els_started_at))
    return int((await session.execute(stmt)).scalar_one())


async def close_expired(session: AsyncSession, outbox: Outbox, now: datetime, limit: int = 100) -> list[str]:
    """End early life support of every release whose period is over and has no linked incident open."""
    due = (
        (
            await session.execute(
                select(Release)
                .where(Release.state == "early_life_support", Release.els_ends_at <= now)
                .order_by(Release.els_ends_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    closed = []
    for release in due:
        if policy.early_life_support_over(
            release.state, release.els_ends_at, now, await open_incidents(session, release)
        ):
            await close(session, outbox, release, Actor.background(ELS_TASK), now)
            closed.append(release.id)
    return closed


async def notify_freeze(session: AsyncSession, freeze: FreezeRead, now: datetime) -> None:
    """Tell every open release with a service the freeze covers."""
    releases = (
        (await session.execute(select(Release).where(Release.state.not_in(policy.FINISHED), Release.notify != [])))
        .scalars()
        .all()
    )
    for release in releases:
        if freeze.services and not set(freeze.services) & set(release.services):
            continue
        await notifications.enqueue(
            session, release, "release.freeze_scheduled", {"freeze": freeze.model_dump(mode="json")}, now
        )


async def list_releases(
    session: AsyncSession, *, state: str | None, service: str | None, after: list[str] | None, limit: int
) -> list[Release]:
    stmt = select(Release).order_by(Release.created_at.desc(), Release.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(Release.state == state)
    if service:
        stmt = stmt.where(Release.services.contains([service]))
    if after:
        stmt = stmt.where(
            tuple_(Release.created_at, Release.id)
            < tuple_(literal(datetime.fromisoformat(after[0])), literal(after[1]))
        )
    return list((await session.execute(stmt)).scalars())


def deployment_read(d: Deployment) -> DeploymentRead:
    return DeploymentRead(
        id=d.id,
        service=d.service,
        environment=d.environment,
        version=d.version,
        commit=d.commit,
        outcome=d.outcome,  # type: ignore[arg-type]
        at=d.at,
        source=d.source,
        decision_id=d.decision_id,
    )


async def to_read(session: AsyncSession, release: Release, *, details: bool = True) -> ReleaseRead:
    deployments: list[DeploymentRead] = []
    rollbacks: list[RollbackRead] = []
    if details:
        deployments = [
            deployment_read(d)
            for d in (
                await session.execute(
                    select(Deployment).where(Deployment.release_id == release.id).order_by(Deployment.at, Deployment.id)
                )
            ).scalars()
        ]
        rollbacks = [
            RollbackRead(
                id=r.id, service=r.service, environment=r.environment, at=r.at, reason=r.reason, source=r.source
            )
            for r in (
                await session.execute(
                    select(Rollback).where(Rollback.release_id == release.id).order_by(Rollback.at, Rollback.id)
                )
            ).scalars()
        ]
    return ReleaseRead(
        id=release.id,
        name=release.name,
        version=release.version,
        services=release.services,
        changes=release.changes,
        milestones=MilestonesBody.model_validate(release.milestones),
        notify=release.notify,
        depends_on=release.depends_on,
        state=release.state,  # type: ignore[arg-type]
        els_started_at=release.els_started_at,
        els_ends_at=release.els_ends_at,
        closed_at=release.closed_at,
        closed_by=release.closed_by,
        created_by=release.created_by,
        created_at=release.created_at,
        updated_at=release.updated_at,
        deployments=deployments,
        rollbacks=rollbacks,
    )
