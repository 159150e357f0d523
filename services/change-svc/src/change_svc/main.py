"""change-svc: change enablement."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

import change_svc.projections.models  # noqa: F401 - registers the tables
from change_svc.changes.routes import router as changes_router
from change_svc.config import Settings, get_settings
from change_svc.db import SCHEMA, Base
from change_svc.projections.handlers import subscriptions
from change_svc.schedule.routes import router as schedule_router
from greenzone_common.contracts import CDEVENTS_TOPIC, CHANGE_TOPIC
from greenzone_common.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="change-svc",
    schema=SCHEMA,
    metadata=Base.metadata,
    migrations=Path(__file__).parent / "migrations",
    routers=[changes_router, schedule_router],
    produces=[CHANGE_TOPIC, CDEVENTS_TOPIC],
    subscriptions=subscriptions,
    description="Change enablement: RFC lifecycle, risk, CAB approvals, schedule.",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or get_settings())
