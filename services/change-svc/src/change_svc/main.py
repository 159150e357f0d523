"""change-svc: change enablement."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from change_svc.changes.routes import router as changes_router
from change_svc.config import Settings, get_settings
from change_svc.db import SCHEMA, Base
from greenzone_common.contracts import CDEVENTS_TOPIC, CHANGE_TOPIC
from greenzone_common.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="change-svc",
    schema=SCHEMA,
    metadata=Base.metadata,
    migrations=Path(__file__).parent / "migrations",
    routers=[changes_router],
    produces=[CHANGE_TOPIC, CDEVENTS_TOPIC],
    description="Change enablement: RFC lifecycle, risk, CAB approvals, schedule.",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or get_settings())
