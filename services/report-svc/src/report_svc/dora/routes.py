"""GET /dora: the DORA figures of METRICS.md per service, per team (from the catalogue), or for all services."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from greenzone_common.service import SessionsDep
from report_svc.auth import Reader
from report_svc.dora import service
from report_svc.metrics.period import PeriodDep
from report_svc.metrics.store import iso

router = APIRouter(tags=["dora"])


@router.get("/dora")
async def get_dora(
    request: Request,
    user: Reader,
    sessions: SessionsDep,
    period: PeriodDep,
    service_name: Annotated[str | None, Query(alias="service")] = None,
    team: str | None = None,
    environment: str = "production",
) -> dict[str, Any]:
    service_name, team = service_name or None, team or None
    async with sessions() as session:
        figures = await service.dora_figures(
            session, service=service_name, team=team, environment=environment, period=period, cache=_cache(request)
        )
    return {
        "service": service_name,
        "team": team,
        "environment": environment,
        "from": iso(period.start),
        "to": iso(period.end),
        **figures,
    }


def _cache(request: Request) -> service.IndexCache:
    """One index cache per app (per database): made at startup (``main.py``), or on first use."""
    cache: service.IndexCache | None = getattr(request.app.state, "dora_cache", None)
    if cache is None:
        cache = service.IndexCache(sessions=request.app.state.runtime.sessions)
        request.app.state.dora_cache = cache
    return cache
