"""Platform health from the services' heartbeats: a heartbeat older than three intervals is stale."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from report_svc.metrics.store import iso
from report_svc.projections.facts import Heartbeat

STALE_AFTER_INTERVALS = 3


async def platform_health(session: AsyncSession, interval: float, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    rows = (await session.execute(select(Heartbeat).order_by(Heartbeat.service, Heartbeat.instance))).scalars().all()
    items = []
    for hb in rows:
        age = (now - hb.at).total_seconds()
        stale = age > STALE_AFTER_INTERVALS * interval
        dead_letters = sum(hb.dlq_counts.values())
        items.append(
            {
                "service": hb.service,
                "instance": hb.instance,
                "at": iso(hb.at),
                "age_seconds": round(age, 1),
                "stale": stale,
                "outbox_backlog": hb.outbox_backlog,
                "oldest_unpublished_age_seconds": hb.oldest_unpublished_age_seconds,
                "dlq_counts": hb.dlq_counts,
                "dead_letters": dead_letters,
                "consumer_lag": hb.consumer_lag,
                "status": "stale" if stale else ("degraded" if dead_letters or hb.outbox_backlog > 1000 else "ok"),
            }
        )
    statuses = {i["status"] for i in items}
    overall = "unknown" if not items else "ok" if statuses == {"ok"} else "degraded"
    return {"status": overall, "stale_after_seconds": STALE_AFTER_INTERVALS * interval, "services": items}
