from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.audit import Actor
from greenzone_common.contracts.release import EnvironmentDefined
from greenzone_common.outbox import Outbox
from release_svc.audit import service as audit
from release_svc.environments.models import Environment
from release_svc.environments.schemas import EnvironmentCreate, EnvironmentRead


async def define(
    session: AsyncSession, outbox: Outbox, data: EnvironmentCreate, by: Actor, now: datetime
) -> tuple[Environment, bool]:
    """Define an environment or redefine it; returns it and whether it is new."""
    env = await session.get(Environment, data.name, with_for_update=True)
    created = env is None
    before = None if env is None else audit.snapshot(env)
    if env is None:
        env = Environment(name=data.name, created_at=now)
        session.add(env)
    env.rank = data.rank
    env.protected = data.protected
    env.production = data.production
    env.updated_at = now
    await session.flush()
    await outbox.add(
        session,
        EnvironmentDefined(
            name=env.name, rank=env.rank, protected=env.protected, production=env.production, defined_at=now
        ),
    )
    action = "defined" if created else "redefined"
    await audit.record(session, by, "environment", env.name, action, at=now, before=before, after=audit.snapshot(env))
    return env, created


async def list_environments(session: AsyncSession) -> list[Environment]:
    return list((await session.execute(select(Environment).order_by(Environment.rank, Environment.name))).scalars())


async def names(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(Environment.name))).scalars())


def to_read(env: Environment) -> EnvironmentRead:
    return EnvironmentRead(
        name=env.name,
        rank=env.rank,
        protected=env.protected,
        production=env.production,
        created_at=env.created_at,
        updated_at=env.updated_at,
    )
