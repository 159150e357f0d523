"""The refresher: regenerates the stored reports of closed releases that late facts marked.

A consumer marks a release in ``report_refresh`` in the transaction of the fact (``projections/handlers.py``), so
no late fact is forgotten; this loop takes marks with ``FOR UPDATE SKIP LOCKED`` and, in one transaction per
round, regenerates each report, stores and announces the new revision through the outbox when it changed, and
clears the marks. A failed round rolls back and its marks stay for the next one. Many late facts arriving together
make one regeneration.
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from greenzone_common.outbox import Outbox
from report_svc.releases.service import refresh_marked

log = structlog.get_logger(__name__)


async def run(sessions: async_sessionmaker[AsyncSession], outbox: Outbox, *, interval: float = 0.5) -> None:
    while True:
        try:
            async with sessions() as session, session.begin():
                taken = await refresh_marked(session, outbox)
        except Exception as exc:  # the marks are still there: retried next round
            log.warning("report.refresh_failed", error=repr(exc))
            taken = 0
        if not taken:
            await asyncio.sleep(interval)
