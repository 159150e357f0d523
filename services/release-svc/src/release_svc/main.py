"""release-svc: release and deployment management, the gate."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from greenzone_common.contracts import RELEASE_TOPIC
from greenzone_common.service import ServiceSpec, create_service_app
from release_svc.config import Settings, get_settings
from release_svc.db import SCHEMA, Base

SPEC = ServiceSpec(
    name="release-svc",
    schema=SCHEMA,
    metadata=Base.metadata,
    migrations=Path(__file__).parent / "migrations",
    produces=[RELEASE_TOPIC],
    description="Release and deployment management: catalogue, environments, windows, freezes, the gate.",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or get_settings())
