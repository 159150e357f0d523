"""A closed release's stored report follows facts that arrive after ``release.closed``: regenerated, stored as the
next revision and announced again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from greenzone_common.contracts import REPORT_TOPIC
from greenzone_common.contracts import pipeline as pl
from greenzone_common.contracts.report import ReleaseReportPublished
from greenzone_common.testing.helpers import eventually
from report_svc.config import Settings

from .conftest import VIEWER, publish, sent
from .test_dora_projection import at, scenario, scenario_projected

pytestmark = pytest.mark.integration


async def projected_then_closed(report: httpx.AsyncClient, settings: Settings, service: str) -> str:
    """The scenario's facts projected first, then its ``release.closed``: revision 1 is then the complete report."""
    events, release_id = scenario(service)
    *facts, closed = events
    await publish(settings, facts)
    await eventually(lambda: scenario_projected(settings.asyncpg_dsn, service, release_id), timeout=30)
    await publish(settings, [closed])
    return release_id


async def marks(dsn: str, release_id: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM report.report_refresh WHERE release_id = $1", release_id))
    finally:
        await conn.close()


async def test_late_incident_and_evidence_regenerate_the_closed_release_report_as_a_new_revision(
    report: httpx.AsyncClient, report_settings: Settings
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    release_id = await projected_then_closed(report, report_settings, service)

    async def stored(revision: int) -> dict[str, Any] | None:
        response = await report.get(f"/releases/{release_id}/report", headers=VIEWER)
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body.get("revision") == revision else None

    first = await eventually(lambda: stored(1), timeout=30)
    assert first["incidents"] == [] and first["assessment"]["score"] == 85  # as test_dora_projection computes it

    # After the close: an incident that started 30 min after the release's deployment (a1 at 1 h) and is linked to
    # it, and a failed test run of the released version, reported later than the passing one.
    incident = f"inc-late-{service}"
    await publish(
        report_settings,
        [
            sent(pl.IncidentDetected(incident_id=incident, service=service, environment="production", at=at(1.5))),
            sent(
                pl.TestsReported(
                    service=service, version="1.0", counts={"failed": 1}, outcome="failure", reported_at=at(0.7)
                )
            ),
        ],
    )

    async def regenerated() -> dict[str, Any] | None:
        body = await stored(2) or await stored(3)
        if body and body["incidents"] and body["assessment"]["components"]["Q"] == 0.0:
            return body
        return None

    second = await eventually(regenerated, timeout=30)
    assert [i["id"] for i in second["incidents"]] == [incident]
    assert second["incidents"][0]["deployment_id"] == first["deployments"][0]["id"]
    assert second["assessment"]["score"] < first["assessment"]["score"]
    assert second["generated_at"] > first["generated_at"]

    # every revision was announced, in order, on the release's key; the last one says what the stored report says
    consumer = AIOKafkaConsumer(
        REPORT_TOPIC, bootstrap_servers=report_settings.kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    announced: list[dict[str, Any]] = []
    try:

        async def all_revisions() -> bool:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if dict(record.headers).get("ce_type") == ReleaseReportPublished.event_type.encode() and (
                        record.key == release_id.encode()
                    ):
                        announced.append(json.loads(record.value))
            return bool(announced) and announced[-1]["revision"] == second["revision"]

        await eventually(all_revisions, timeout=30)
    finally:
        await consumer.stop()
    assert [a["revision"] for a in announced] == list(range(1, second["revision"] + 1))
    assert announced[0]["incident_count"] == 0
    assert announced[-1]["incident_count"] == 1
    assert announced[-1]["assessment"] == second["assessment"]


async def test_a_late_fact_that_changes_nothing_in_the_report_makes_no_new_revision(
    report: httpx.AsyncClient, report_settings: Settings
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    release_id = await projected_then_closed(report, report_settings, service)
    dsn = report_settings.asyncpg_dsn

    async def stored() -> dict[str, Any] | None:
        response = await report.get(f"/releases/{release_id}/report", headers=VIEWER)
        return response.json() if response.status_code == 200 and "revision" in response.json() else None

    first = await eventually(stored, timeout=30)
    assert first["revision"] == 1 and first["assessment"]["score"] == 85
    # a scan of the released version with only a low finding: the release is marked, its report regenerated and
    # found to say the same (Q still 1)
    await publish(
        report_settings,
        [sent(pl.ScanReported(service=service, version="1.0", findings={"low": 1}, reported_at=at(0.6)))],
    )
    probe = f"probe-{service}"  # a later fact on the same topic and key order: committed after the scan
    await publish(
        report_settings,
        [
            sent(
                pl.DeploymentObserved(
                    service=probe, environment="production", outcome="success", at=at(1), source="x", source_id="p"
                )
            )
        ],
    )

    async def scanned_and_refreshed() -> bool:
        conn = await asyncpg.connect(dsn)
        try:
            scans = await conn.fetchval("SELECT count(*) FROM report.scan_evidence WHERE service = $1", service)
            probes = await conn.fetchval("SELECT count(*) FROM report.deployment_reports WHERE service = $1", probe)
            return bool(scans == 2 and probes == 1)
        finally:
            await conn.close()

    await eventually(scanned_and_refreshed, timeout=30)
    await eventually(lambda: _none(marks(dsn, release_id)), timeout=30)  # taken and cleared by the refresher
    again = await stored()
    assert again is not None and again["revision"] == first["revision"] == 1
    assert again["generated_at"] == first["generated_at"]


async def _none(count: Awaitable[int]) -> bool:
    return await count == 0
