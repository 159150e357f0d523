"""report-svc: the record and the dashboard."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

import report_svc.projections.models  # noqa: F401 - registers the tables
from greenzone_common.contracts import REPORT_TOPIC
from greenzone_common.service import ServiceSpec, create_service_app
from report_svc.config import Settings, get_settings
from report_svc.db import SCHEMA, Base
from report_svc.projections.handlers import change_subscription

SPEC = ServiceSpec(
    name="report-svc",
    schema=SCHEMA,
    metadata=Base.metadata,
    migrations=Path(__file__).parent / "migrations",
    produces=[REPORT_TOPIC],
    subscriptions=lambda app: [change_subscription()],
    description="The record and the dashboard: DORA metrics, release reports, traceability.",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or get_settings())
