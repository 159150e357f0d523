"""Runs reported more than once merge into one row, and a run's announcement says what the reports said together."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from greenzone_common.contracts.pipeline import PipelineRunFinished
from greenzone_common.db import unit_of_work
from greenzone_common.testing.helpers import running
from pipeline_svc.config import Settings
from pipeline_svc.facts import service as facts
from pipeline_svc.main import create_app
from pipeline_svc.sources.facts import RunFact, ServiceRef

pytestmark = pytest.mark.integration

QUEUED = datetime(2026, 3, 2, 9, 58, tzinfo=UTC)
STARTED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FINISHED = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)


def run(service: str, key: str, **fields: object) -> RunFact:
    return RunFact(
        ref=ServiceRef(explicit=service), kind="pipeline", source="tekton", run_key=key, pipeline="build", **fields
    )  # type: ignore[arg-type]


async def test_a_run_completed_after_it_started_is_announced_with_what_both_reports_said(
    settings: Settings, db: asyncpg.Connection
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    started = run(service, "r1", status="running", queued_at=QUEUED, started_at=STARTED, commit="abc", branch="main")
    # the completion says less (no queue or start time, no commit): what the start said is kept
    finished = run(service, "r1", status="completed", outcome="success", finished_at=FINISHED, duration_s=300.0)
    other = run(service, "r2", status="completed", outcome="failure", finished_at=FINISHED, url="https://ci/r2")
    app = create_app(settings)
    async with running(app):
        rt = app.state.runtime
        async with unit_of_work(rt.sessions) as session:
            first = await facts.record(session, rt.outbox, [facts.Sourced(started, None)])
        async with unit_of_work(rt.sessions) as session:  # one merged and one new run in one statement
            second = await facts.record(session, rt.outbox, [facts.Sourced(finished, None), facts.Sourced(other, None)])
        async with unit_of_work(rt.sessions) as session:  # completed runs do not go back: nothing changes
            third = await facts.record(session, rt.outbox, [facts.Sourced(started, None)])
    assert (first.new, second.new, third.new) == (0, 2, 0)
    rows = await db.fetch(
        "SELECT data::text FROM pipeline.outbox WHERE type = $1 AND key = $2 ORDER BY seq",
        PipelineRunFinished.event_type,
        service,
    )
    announced = {d["run_id"]: d for d in (json.loads(r["data"]) for r in rows)}
    assert announced["r1"] == {
        "service": service,
        "pipeline": "build",
        "run_id": "r1",
        "outcome": "success",
        "queued_at": "2026-03-02T09:58:00Z",
        "started_at": "2026-03-02T10:00:00Z",
        "finished_at": "2026-03-02T10:05:00Z",
        "repository": None,
        "branch": "main",
        "commit": "abc",
        "version": None,
        "url": None,
        "source": "tekton",
        "duration_s": 300.0,
        "queue_s": None,
    }
    assert (announced["r2"]["outcome"], announced["r2"]["url"], announced["r2"]["started_at"]) == (
        "failure",
        "https://ci/r2",
        None,
    )
    stored = await db.fetchrow(
        "SELECT status, queued_at, started_at, finished_at, commit FROM pipeline.runs"
        " WHERE service = $1 AND run_key = 'r1'",
        service,
    )
    assert tuple(stored) == ("completed", QUEUED, STARTED, FINISHED, "abc")
