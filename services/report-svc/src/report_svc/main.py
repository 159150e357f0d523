"""report-svc: the record and the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from fastapi import FastAPI

import report_svc.projections.facts
import report_svc.projections.models  # noqa: F401 - registers the tables
from greenzone_common.consumer import Subscription
from greenzone_common.contracts import REPORT_TOPIC
from greenzone_common.service import ServiceSpec, create_service_app
from report_svc.config import Settings, get_settings
from report_svc.dashboard.routes import router as dashboard_router
from report_svc.db import SCHEMA, Base
from report_svc.delivery.routes import router as delivery_router
from report_svc.dora.routes import router as dora_router
from report_svc.dora.service import IndexCache, warm
from report_svc.platform.routes import router as platform_router
from report_svc.projections.handlers import (
    change_subscription,
    pipeline_subscription,
    platform_subscription,
    release_subscription,
)
from report_svc.releases import refresh
from report_svc.releases.routes import router as releases_router
from report_svc.releases.service import on_release_closed


def subscriptions(app: FastAPI) -> Sequence[Subscription]:
    # the change consumer first: the walking-skeleton tests find it at consumers[0]
    return [
        change_subscription(),
        release_subscription(on_release_closed(app.state.runtime.outbox)),
        pipeline_subscription(),
        platform_subscription(),
    ]


SPEC = ServiceSpec(
    name="report-svc",
    schema=SCHEMA,
    metadata=Base.metadata,
    migrations=Path(__file__).parent / "migrations",
    routers=[dora_router, releases_router, delivery_router, platform_router, dashboard_router],
    produces=[REPORT_TOPIC],
    subscriptions=subscriptions,
    description="The record and the dashboard: DORA metrics, release reports, traceability.",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = create_service_app(SPEC, settings or get_settings())
    common = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # report-svc's own background work, started once the common plumbing (sessions, outbox) is up
        async with common(app):
            rt = app.state.runtime
            app.state.dora_cache = cache = IndexCache(sessions=rt.sessions)
            tasks = [
                asyncio.create_task(refresh.run(rt.sessions, rt.outbox), name="report-svc.refresh"),
                asyncio.create_task(warm(rt.sessions, cache), name="report-svc.dora-warm"),
            ]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    app.router.lifespan_context = lifespan
    return app
