"""The per-service DORA index is stored once built, read back by a restarted process while the service's facts are
unchanged, and rebuilt as soon as they change."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from greenzone_common.testing.helpers import eventually
from report_svc.config import Settings
from report_svc.dora import service as dora
from report_svc.metrics.period import Period

from .conftest import VIEWER, publish, sent
from .test_dora_projection import T, observed, scenario

pytestmark = pytest.mark.integration


async def test_a_restarted_process_reads_the_stored_index_until_the_facts_change(
    report: httpx.AsyncClient, report_app: FastAPI, report_settings: Settings
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    events, _ = scenario(service)
    await publish(report_settings, events[:-1])
    params = {"service": service, "from": T.isoformat(), "to": (T + timedelta(days=2)).isoformat()}
    period = Period(T, T + timedelta(days=2))
    sessions = report_app.state.runtime.sessions

    async def complete() -> dict[str, Any] | None:
        body: dict[str, Any] = (await report.get("/dora", params=params, headers=VIEWER)).json()
        done = body["lead_time_for_changes"]["changes"] == 3 and body["change_failure_rate"]["deployments"] == 4
        return body if done and body["time_to_restore"]["incidents"] == 1 else None

    answered = await eventually(complete, timeout=30)
    dsn = report_settings.asyncpg_dsn

    async def all_applied() -> bool:  # every event of every topic, so the fact version stays put from here on
        conn = await asyncpg.connect(dsn)
        try:
            ids = [e.ce_id for e in events[:-1]]
            return bool(await conn.fetchval("SELECT count(*) FROM report.inbox WHERE ce_id = ANY($1)", ids) == len(ids))
        finally:
            await conn.close()

    await eventually(all_applied, timeout=30)
    expected = {k: v for k, v in answered.items() if k not in ("service", "team", "environment", "from", "to")}

    async def figures(cache: dora.IndexCache) -> dict[str, Any]:
        async with sessions() as session:
            return await dora.dora_figures(
                session, service=service, team=None, environment="production", period=period, cache=cache
            )

    # a process: reads the index the app stored if it is of the current version, else builds and stores it
    first = dora.IndexCache(sessions=sessions)
    assert await figures(first) == expected
    assert first.built + first.read == 1
    await asyncio.gather(*first.writes)
    conn = await asyncpg.connect(dsn)
    try:
        stored = await conn.fetchrow(
            "SELECT version, length(body) AS size FROM report.dora_indexes WHERE service = $1 AND environment = $2",
            service,
            "production",
        )
        version = await conn.fetchval("SELECT sum(version) FROM report.fact_versions WHERE service = $1", service)
    finally:
        await conn.close()
    assert stored is not None and stored["version"] == version and stored["size"] > 0

    # after a restart (an empty cache) the stored index answers, the same figures
    restarted = dora.IndexCache(sessions=sessions)
    assert await figures(restarted) == expected
    assert (restarted.built, restarted.read) == (0, 1)

    # a new fact: the stored index is of an older version (the app stores a service's index at most every 30 s),
    # so it is built again and counts the deployment
    await publish(report_settings, [sent(observed(service, "a5", 40))])

    async def counted() -> bool:
        body = (await report.get("/dora", params=params, headers=VIEWER)).json()
        return bool(body["change_failure_rate"]["deployments"] == 5)

    await eventually(counted, timeout=30)
    later = dora.IndexCache(sessions=sessions)
    assert (await figures(later))["change_failure_rate"]["deployments"] == 5
    assert (later.built, later.read) == (1, 0)
