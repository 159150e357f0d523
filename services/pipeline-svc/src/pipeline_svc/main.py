"""pipeline-svc: the door for delivery tools."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

import pipeline_svc.catalogue.models
import pipeline_svc.facts.models
import pipeline_svc.intake.models  # noqa: F401 - registers the tables
from greenzone_common.contracts import CDEVENTS_TOPIC, PIPELINE_TOPIC
from greenzone_common.service import ServiceSpec, create_service_app
from pipeline_svc.catalogue.handlers import catalogue_subscription
from pipeline_svc.config import Settings, get_settings
from pipeline_svc.db import SCHEMA, Base
from pipeline_svc.evidence.routes import router as evidence_router
from pipeline_svc.facts.routes import router as reads_router
from pipeline_svc.incidents.routes import router as incidents_router
from pipeline_svc.intake.routes import router as intake_router
from pipeline_svc.sources import cdevents

SPEC = ServiceSpec(
    name="pipeline-svc",
    schema=SCHEMA,
    metadata=Base.metadata,
    migrations=Path(__file__).parent / "migrations",
    routers=[intake_router, evidence_router, incidents_router, reads_router],
    produces=[PIPELINE_TOPIC, CDEVENTS_TOPIC],
    subscriptions=lambda app: [catalogue_subscription()],
    description="The door for delivery tools: webhooks, CloudEvents and evidence in; facts and events out.",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    cdevents.schemas()  # compile the CDEvents schemas now, not on the first request
    return create_service_app(SPEC, settings or get_settings())
