"""Catalogue use cases: register services, and register the repositories and artifacts CI tools tell us about."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.audit import Actor
from greenzone_common.contracts.release import ServiceRegistered
from greenzone_common.outbox import Outbox
from release_svc.audit import service as audit
from release_svc.catalogue.models import Service
from release_svc.catalogue.policy import repository_short_name
from release_svc.catalogue.schemas import ServiceCreate, ServiceRead


def _event(service: Service, now: datetime) -> ServiceRegistered:
    return ServiceRegistered(
        name=service.name,
        repositories=list(service.repositories),
        artifacts=list(service.artifacts),
        team=service.team,
        auto_registered=service.auto_registered,
        registered_at=now,
    )


async def register(
    session: AsyncSession, outbox: Outbox, data: ServiceCreate, by: Actor, now: datetime
) -> tuple[Service, bool]:
    """Create the service or redefine it; returns it and whether it is new."""
    service = await session.get(Service, data.name, with_for_update=True)
    created = service is None
    before = None if service is None else audit.snapshot(service)
    if service is None:
        service = Service(name=data.name, created_at=now)
        session.add(service)
    service.repositories = list(dict.fromkeys(data.repositories))
    service.artifacts = list(dict.fromkeys(data.artifacts))
    service.team = data.team
    service.auto_registered = False
    service.updated_at = now
    await session.flush()
    await outbox.add(session, _event(service, now))
    await audit.record(
        session,
        by,
        "service",
        service.name,
        "registered" if created else "redefined",
        at=now,
        before=before,
        after=audit.snapshot(service),
    )
    return service, created


async def ensure_known(
    session: AsyncSession,
    outbox: Outbox,
    *,
    service_name: str,
    repository: str | None = None,
    artifact: str | None = None,
    by: Actor,
    now: datetime,
) -> Service | None:
    """Make a repository or artifact seen in CI events part of the catalogue (API.md: an unknown repository
    becomes a service named after its short name). Returns the service when the catalogue changed."""
    if repository:
        known = (
            await session.execute(select(Service.name).where(Service.repositories.contains([repository])).limit(1))
        ).scalar_one_or_none()
        if known is not None:
            return None
        return await _attach(session, outbox, repository_short_name(repository), "repositories", repository, by, now)
    if artifact:
        known = (
            await session.execute(select(Service.name).where(Service.artifacts.contains([artifact])).limit(1))
        ).scalar_one_or_none()
        if known is not None:
            return None
        return await _attach(session, outbox, service_name, "artifacts", artifact, by, now)
    return None


async def _attach(
    session: AsyncSession, outbox: Outbox, name: str, field: str, value: str, by: Actor, now: datetime
) -> Service:
    service = await session.get(Service, name, with_for_update=True)
    before = None if service is None else audit.snapshot(service)
    if service is None:
        service = Service(
            name=name, repositories=[], artifacts=[], team=None, auto_registered=True, created_at=now, updated_at=now
        )
        session.add(service)
    setattr(service, field, [*getattr(service, field), value])
    service.updated_at = now
    await session.flush()
    await outbox.add(session, _event(service, now))
    action = "auto_registered" if before is None else f"{field}_seen"
    await audit.record(
        session, by, "service", service.name, action, at=now, before=before, after=audit.snapshot(service)
    )
    return service


async def list_services(session: AsyncSession, after: str | None, limit: int) -> list[Service]:
    stmt = select(Service).order_by(Service.name).limit(limit)
    if after is not None:
        stmt = stmt.where(Service.name > after)
    return list((await session.execute(stmt)).scalars())


def to_read(service: Service) -> ServiceRead:
    return ServiceRead(
        name=service.name,
        repositories=service.repositories,
        artifacts=service.artifacts,
        team=service.team,
        auto_registered=service.auto_registered,
        created_at=service.created_at,
        updated_at=service.updated_at,
    )
