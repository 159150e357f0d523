"""GET /platform/health: outbox backlog, consumer lag and dead letters per service, with staleness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from greenzone_common.service import RuntimeDep, SessionsDep
from report_svc.auth import Reader
from report_svc.platform.service import platform_health

router = APIRouter(tags=["platform"])


@router.get("/platform/health")
async def get_platform_health(user: Reader, sessions: SessionsDep, rt: RuntimeDep) -> dict[str, Any]:
    async with sessions() as session:
        return await platform_health(session, rt.settings.heartbeat_interval)
