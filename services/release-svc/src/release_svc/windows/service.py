from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.audit import Actor
from greenzone_common.contracts.release import WindowDefined, WindowRemoved
from greenzone_common.outbox import Outbox
from release_svc.audit import service as audit
from release_svc.environments.models import Environment
from release_svc.windows.models import Window
from release_svc.windows.policy import WindowRule
from release_svc.windows.schemas import WindowCreate, WindowRead


class UnknownEnvironment(LookupError):
    pass


async def define(session: AsyncSession, outbox: Outbox, data: WindowCreate, by: Actor, now: datetime) -> Window:
    if await session.get(Environment, data.environment) is None:
        raise UnknownEnvironment(data.environment)
    window = Window(
        id=str(uuid.uuid4()),
        environment=data.environment,
        days=list(data.days),
        start=data.start,
        end=data.end,
        timezone=data.timezone,
        created_by=by.sub,
        created_at=now,
    )
    session.add(window)
    await session.flush()
    await outbox.add(
        session,
        WindowDefined(
            window_id=window.id,
            environment=window.environment,
            days=data.days,
            start=window.start,
            end=window.end,
            timezone=window.timezone,
            defined_at=now,
        ),
    )
    await audit.record(session, by, "window", window.id, "defined", at=now, after=audit.snapshot(window))
    return window


async def remove(session: AsyncSession, outbox: Outbox, window: Window, by: Actor, now: datetime) -> None:
    before = audit.snapshot(window)
    await session.delete(window)
    await session.flush()
    await outbox.add(
        session, WindowRemoved(window_id=window.id, environment=window.environment, removed_by=by.sub, removed_at=now)
    )
    await audit.record(session, by, "window", window.id, "removed", at=now, before=before)


async def list_windows(session: AsyncSession, environment: str | None = None) -> list[Window]:
    stmt = select(Window).order_by(Window.environment, Window.created_at, Window.id)
    if environment is not None:
        stmt = stmt.where(Window.environment == environment)
    return list((await session.execute(stmt)).scalars())


def rule(window: Window) -> WindowRule:
    return WindowRule(days=tuple(window.days), start=window.start, end=window.end, timezone=window.timezone)


def to_read(window: Window) -> WindowRead:
    return WindowRead(
        id=window.id,
        environment=window.environment,
        days=window.days,  # type: ignore[arg-type]
        start=window.start.strftime("%H:%M"),
        end=window.end.strftime("%H:%M"),
        timezone=window.timezone,
        created_at=window.created_at,
    )
