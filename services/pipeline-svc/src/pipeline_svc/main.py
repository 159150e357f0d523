"""pipeline-svc: the door for delivery tools."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from greenzone_common.contracts import CDEVENTS_TOPIC, PIPELINE_TOPIC
from greenzone_common.service import ServiceSpec, create_service_app
from pipeline_svc.config import Settings, get_settings
from pipeline_svc.db import SCHEMA, Base

SPEC = ServiceSpec(
    name="pipeline-svc",
    schema=SCHEMA,
    metadata=Base.metadata,
    migrations=Path(__file__).parent / "migrations",
    produces=[PIPELINE_TOPIC, CDEVENTS_TOPIC],
    description="The door for delivery tools: webhooks, CloudEvents and evidence in; facts and events out.",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or get_settings())
