"""GET /traceability, GET /pipelines/stats, GET /maturity."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from greenzone_common.service import SessionsDep
from report_svc.auth import Reader
from report_svc.delivery import service
from report_svc.metrics.period import PeriodDep

router = APIRouter(tags=["delivery"])


@router.get("/traceability")
async def get_traceability(
    user: Reader,
    sessions: SessionsDep,
    period: PeriodDep,
    service_name: Annotated[str | None, Query(alias="service")] = None,
) -> dict[str, Any]:
    """Production deployments with and without an approved change; the latter are unrecorded deployments."""
    async with sessions() as session:
        return await service.traceability(session, period, service_name or None)


@router.get("/pipelines/stats")
async def get_pipeline_stats(user: Reader, sessions: SessionsDep, period: PeriodDep) -> dict[str, Any]:
    async with sessions() as session:
        return await service.pipeline_stats(session, period)


@router.get("/maturity")
async def get_maturity(user: Reader, sessions: SessionsDep) -> dict[str, Any]:
    async with sessions() as session:
        return await service.maturity(session)
