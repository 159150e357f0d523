"""GET /dashboard (HTML)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from greenzone_common.service import RuntimeDep, SessionsDep
from report_svc.auth import Reader
from report_svc.dashboard import service

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", response_class=HTMLResponse)
async def get_dashboard(user: Reader, sessions: SessionsDep, rt: RuntimeDep) -> HTMLResponse:
    async with sessions() as session:
        return HTMLResponse(await service.render(session, rt.settings.heartbeat_interval))
