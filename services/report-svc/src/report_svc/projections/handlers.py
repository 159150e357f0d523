"""Consumers of change-svc's events."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.consumer import Subscription
from greenzone_common.contracts import CHANGE_TOPIC
from greenzone_common.contracts.base import EventData
from greenzone_common.contracts.change import ChangeCreated
from greenzone_common.envelope import ReceivedEvent
from report_svc.projections.models import ChangeEvent, ChangeView

GROUP = "report-svc.changes"


async def on_change_created(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, ChangeCreated)
    values = {
        "change_id": data.change_id,
        "number": data.number,
        "title": data.title,
        "type": data.type,
        "service": data.service,
        "environment": data.environment,
        "state": "draft",
        "requested_by": data.requested_by,
        "version": data.version,
        "risk_level": data.risk.level,
        "created_at": data.created_at,
        "updated_at": data.created_at,
    }
    # created may arrive after a later event of the same change: never overwrite a later state
    stmt = pg_insert(ChangeView).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ChangeView.change_id],
        set_={
            k: stmt.excluded[k]
            for k in (
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
        },
    )
    await session.execute(stmt)
    await session.execute(
        insert(ChangeEvent).values(change_id=data.change_id, ce_id=event.id, type=event.type, occurred_at=event.time)
    )


def change_subscription() -> Subscription:
    return Subscription(group=GROUP, topics=[CHANGE_TOPIC], handlers={ChangeCreated.event_type: on_change_created})
