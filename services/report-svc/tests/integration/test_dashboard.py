"""The dashboard in a real headless Chromium (Debian's ``chromium``): the charts drew with data; a screenshot is
saved under the test's output directory."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from greenzone_common import devstack
from greenzone_common.contracts import change as ch
from greenzone_common.contracts import release as rl
from greenzone_common.testing.helpers import eventually, token
from report_svc.config import Settings

from .conftest import VIEWER, publish, sent
from .test_order_independence import history

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class WithBearer:
    """What a signed-in browser session would add: the viewer's bearer token on every request."""

    def __init__(self, app: FastAPI, bearer: str) -> None:
        self.app = app
        self.header = (b"authorization", f"Bearer {bearer}".encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "headers": [*scope["headers"], self.header]}
        await self.app(scope, receive, send)


def extra_events(now: datetime) -> list[Any]:
    change = {
        "change_id": str(uuid.uuid4()),
        "number": "CHG-000042",
        "type": "normal",
        "service": "dash-api",
        "environment": "production",
    }
    release = {"release_id": str(uuid.uuid4()), "name": "Payments Q3", "version": "3.0", "services": ["dash-api"]}
    return [
        ch.ChangeCreated(
            **change,
            title="Raise API pool size",
            requested_by="alice",
            risk={"score": 60, "level": "high"},
            created_at=now - timedelta(days=2),
        ),
        ch.ChangeSubmitted(
            **change, required_approvals=3, state="awaiting_approval", submitted_by="alice", submitted_at=now
        ),
        rl.ReleasePlanned(**release, state="planned", milestones={"deploy": now + timedelta(days=5)}, planned_at=now),
    ]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/ensure-chromium.sh)")
async def test_dashboard_draws_its_charts_in_headless_chromium(
    report_app: FastAPI, report: httpx.AsyncClient, report_settings: Settings, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    events = history(f"dash{uuid.uuid4().hex[:4]}", start=now - timedelta(days=60))
    await publish(report_settings, events + [sent(e) for e in extra_events(now)])

    async def filled() -> bool:
        page = await report.get("/dashboard", headers=VIEWER)
        text = page.text
        return page.status_code == 200 and "CHG-000042" in text and "Payments Q3" in text and "No data yet" not in text

    await eventually(filled, timeout=60)
    html = (await report.get("/dashboard", headers=VIEWER)).text
    assert "<script src" not in html and "cdn" not in html.lower()  # nothing fetched from the internet

    port = devstack.free_port()
    server = uvicorn.Server(
        uvicorn.Config(WithBearer(report_app, token("vera", "viewer")), port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _started(server), timeout=15)
        url = f"http://127.0.0.1:{port}/dashboard"
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
        dom = await _chromium(*flags, "--virtual-time-budget=5000", "--dump-dom", url)
        screenshot = tmp_path / "dashboard.png"
        await _chromium(*flags, "--window-size=1440,2600", f"--screenshot={screenshot}", url)
    finally:
        server.should_exit = True
        await serving

    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, dom[:500]
    attrs = dict(re.findall(r'data-([\w-]+)="(\d+)"', body.group(1)))
    assert int(attrs["charts"]) == 4
    assert int(attrs["charts-drawn"]) == 4, attrs  # every chart has marks with a visible size
    assert int(attrs["marks"]) > 20
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
    print(f"dashboard screenshot: {screenshot}")


async def _started(server: uvicorn.Server) -> bool:
    return bool(server.started)


async def _chromium(*args: str) -> str:
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()
