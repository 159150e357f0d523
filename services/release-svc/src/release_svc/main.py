"""release-svc: release and deployment management, the gate."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI

import release_svc.models  # noqa: F401 - registers every table on the metadata
from greenzone_common.contracts import RELEASE_TOPIC
from greenzone_common.db import unit_of_work
from greenzone_common.service import Runtime, ServiceSpec, create_service_app
from release_svc.audit.routes import router as audit_router
from release_svc.calendar.routes import router as calendar_router
from release_svc.catalogue.routes import router as catalogue_router
from release_svc.config import Settings, get_settings
from release_svc.db import SCHEMA, Base
from release_svc.environments.routes import router as environments_router
from release_svc.freezes.routes import router as freezes_router
from release_svc.gates.routes import router as gates_router
from release_svc.notifications.service import Sender, UrlGuard
from release_svc.projections.handlers import change_subscription, pipeline_subscription
from release_svc.releases import service as releases
from release_svc.releases.routes import router as releases_router
from release_svc.windows.routes import router as windows_router

log = structlog.get_logger(__name__)


def _subscriptions(app: FastAPI) -> list[Any]:
    runtime: Runtime = app.state.runtime
    settings: Settings = app.state.settings
    return [change_subscription(), pipeline_subscription(runtime.outbox, settings.els_period)]


SPEC = ServiceSpec(
    name="release-svc",
    schema=SCHEMA,
    metadata=Base.metadata,
    migrations=Path(__file__).parent / "migrations",
    routers=[
        catalogue_router,
        environments_router,
        windows_router,
        freezes_router,
        gates_router,
        releases_router,
        calendar_router,
        audit_router,
    ],
    produces=[RELEASE_TOPIC],
    subscriptions=_subscriptions,
    description="Release and deployment management: catalogue, environments, windows, freezes, releases, the gate.",
)


async def end_early_life_support(runtime: Runtime, interval: float) -> None:
    """Close releases whose early life support is over and has no linked incident open."""
    while True:
        try:
            async with unit_of_work(runtime.sessions) as session:
                closed = await releases.close_expired(session, runtime.outbox, datetime.now(UTC))
            if closed:
                log.info("releases.els_ended", releases=closed)
        except Exception as exc:  # keep going: the next pass retries
            log.warning("releases.els_check_failed", error=repr(exc))
        await asyncio.sleep(interval)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = create_service_app(SPEC, settings)
    # where webhooks may go: checked when a release is planned and before every delivery (tests may swap it)
    app.state.notify_guard = UrlGuard.from_settings(
        settings.notify_private_allowed, settings.notify_allowed_hosts, settings.notify_timeout
    )
    plumbing = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with plumbing(app) as state:
            runtime: Runtime = app.state.runtime
            sender = Sender(
                runtime.sessions,
                guard=app.state.notify_guard,
                max_attempts=settings.notify_max_attempts,
                backoff=settings.notify_backoff,
                timeout=settings.notify_timeout,
            )
            tasks = [
                asyncio.create_task(sender.run(settings.notify_poll_interval), name="release-svc.notifications"),
                asyncio.create_task(
                    end_early_life_support(runtime, settings.els_check_interval), name="release-svc.els"
                ),
            ]
            try:
                yield state
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await sender.close()

    app.router.lifespan_context = lifespan
    return app
