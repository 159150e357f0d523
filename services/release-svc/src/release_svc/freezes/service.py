from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.audit import Actor
from greenzone_common.contracts.release import FreezeLifted, FreezeScheduled
from greenzone_common.outbox import Outbox
from release_svc.audit import service as audit
from release_svc.environments import service as environments
from release_svc.freezes.models import Freeze
from release_svc.freezes.schemas import FreezeCreate, FreezeRead
from release_svc.releases import service as releases


class UnknownEnvironments(LookupError):
    pass


class FreezeNotFound(LookupError):
    pass


async def schedule(session: AsyncSession, outbox: Outbox, data: FreezeCreate, by: Actor, now: datetime) -> Freeze:
    unknown = sorted(set(data.environments) - await environments.names(session))
    if unknown:
        raise UnknownEnvironments(", ".join(unknown))
    freeze = Freeze(
        id=str(uuid.uuid4()),
        name=data.name,
        start=data.start,
        end=data.end,
        environments=data.environments,
        services=list(dict.fromkeys(data.services)),
        reason=data.reason,
        created_by=by.sub,
        created_at=now,
    )
    session.add(freeze)
    await session.flush()
    await outbox.add(
        session,
        FreezeScheduled(
            freeze_id=freeze.id,
            name=freeze.name,
            start=freeze.start,
            end=freeze.end,
            environments=freeze.environments,
            services=freeze.services,
            reason=freeze.reason,
            scheduled_by=by.sub,
            scheduled_at=now,
        ),
    )
    await audit.record(session, by, "freeze", freeze.id, "scheduled", at=now, after=audit.snapshot(freeze))
    await releases.notify_freeze(session, to_read(freeze), now)
    return freeze


async def lift(session: AsyncSession, outbox: Outbox, freeze_id: str, by: Actor, now: datetime) -> Freeze:
    freeze = await session.get(Freeze, freeze_id, with_for_update=True)
    if freeze is None or freeze.lifted_at is not None:
        raise FreezeNotFound(freeze_id)
    before = audit.snapshot(freeze)
    freeze.lifted_at = now
    freeze.lifted_by = by.sub
    await session.flush()
    await outbox.add(session, FreezeLifted(freeze_id=freeze.id, name=freeze.name, lifted_by=by.sub, lifted_at=now))
    await audit.record(session, by, "freeze", freeze.id, "lifted", at=now, before=before, after=audit.snapshot(freeze))
    return freeze


async def list_freezes(
    session: AsyncSession, *, include_lifted: bool, ending_after: datetime | None, after: list[str] | None, limit: int
) -> list[Freeze]:
    stmt = select(Freeze).order_by(Freeze.start, Freeze.id).limit(limit)
    if not include_lifted:
        stmt = stmt.where(Freeze.lifted_at.is_(None))
    if ending_after is not None:
        stmt = stmt.where(Freeze.end > ending_after)
    if after:
        stmt = stmt.where(
            tuple_(Freeze.start, Freeze.id) > tuple_(literal(datetime.fromisoformat(after[0])), literal(after[1]))
        )
    return list((await session.execute(stmt)).scalars())


def to_read(freeze: Freeze) -> FreezeRead:
    return FreezeRead(
        id=freeze.id,
        name=freeze.name,
        start=freeze.start,
        end=freeze.end,
        environments=freeze.environments,
        services=freeze.services,
        reason=freeze.reason,
        created_by=freeze.created_by,
        created_at=freeze.created_at,
        lifted_at=freeze.lifted_at,
        lifted_by=freeze.lifted_by,
    )
