"""Consumer of release-svc's catalogue: ``dev.greenzone.service.registered.v1`` → which service owns a repository or
an artifact. Idempotent (inbox) and order-tolerant: an older registration never overwrites a newer one."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.consumer import Subscription
from greenzone_common.contracts import RELEASE_TOPIC
from greenzone_common.contracts.base import EventData
from greenzone_common.contracts.release import ServiceRegistered
from greenzone_common.envelope import ReceivedEvent
from pipeline_svc.catalogue.models import CatalogueKey, CatalogueService

GROUP = "pipeline-svc.catalogue"


async def on_service_registered(session: AsyncSession, event: ReceivedEvent, data: EventData) -> None:
    assert isinstance(data, ServiceRegistered)
    current = (
        await session.execute(select(CatalogueService).where(CatalogueService.name == data.name).with_for_update())
    ).scalar_one_or_none()
    if current is not None and current.registered_at > data.registered_at:
        return  # a newer registration of this service was applied already
    values = {
        "name": data.name,
        "repositories": list(data.repositories),
        "artifacts": list(data.artifacts),
        "team": data.team,
        "registered_at": data.registered_at,
    }
    stmt = pg_insert(CatalogueService).values(values)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[CatalogueService.name], set_={k: stmt.excluded[k] for k in values})
    )
    await session.execute(delete(CatalogueKey).where(CatalogueKey.service == data.name))
    keys = [{"kind": "repository", "key": r.lower(), "service": data.name} for r in data.repositories]
    keys += [{"kind": "artifact", "key": a.lower(), "service": data.name} for a in data.artifacts]
    if keys:
        # a key moved from another service to this one: the latest registration owns it
        stmt_keys = pg_insert(CatalogueKey).values(keys)
        await session.execute(
            stmt_keys.on_conflict_do_update(
                index_elements=[CatalogueKey.kind, CatalogueKey.key], set_={"service": stmt_keys.excluded.service}
            )
        )


def catalogue_subscription() -> Subscription:
    return Subscription(
        group=GROUP, topics=[RELEASE_TOPIC], handlers={ServiceRegistered.event_type: on_service_registered}
    )
