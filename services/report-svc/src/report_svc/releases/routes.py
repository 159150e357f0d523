"""GET /releases/{id}/report: JSON, ?format=html or ?format=csv."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from greenzone_common.problems import Problem
from greenzone_common.service import SessionsDep
from report_svc.auth import Reader
from report_svc.releases import render, service

router = APIRouter(tags=["releases"])


@router.get("/releases/{release_id}/report")
async def release_report(
    release_id: str, user: Reader, sessions: SessionsDep, format: Literal["json", "html", "csv"] = "json"
) -> Response:
    async with sessions() as session:
        report = await service.stored_report(session, release_id)
        if report is None:  # not closed yet: a preview, computed now and not stored
            try:
                report = await service.build_report(session, release_id)
            except service.ReleaseNotFound:
                raise Problem(404, f"No release with id {release_id}") from None
    if format == "html":
        return HTMLResponse(render.to_html(report))
    if format == "csv":
        return PlainTextResponse(
            render.to_csv(report),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="release-{release_id}.csv"'},
        )
    return JSONResponse(report)
