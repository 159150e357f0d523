"""Outbox rows as a BulkInsert writes them: an event kept as a model is written as the same JSON as its dumped
values."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import MetaData

from greenzone_common.bulk import BulkInsert
from greenzone_common.contracts.pipeline import PipelineRunFinished
from greenzone_common.outbox import COLUMNS, Outbox
from greenzone_common.plumbing import plumbing_tables

EVENT = PipelineRunFinished(
    service="api",
    pipeline="build",
    run_id="/ci/run-1",
    outcome="success",
    finished_at=datetime(2026, 3, 2, 10, 0, 30, 123456, tzinfo=UTC),
    started_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    url="https://ci.example/1",
    source="cdevents",
    duration_s=30.123456,
    extra_field="kept",  # events allow extra fields: they are written too
)


def test_an_event_kept_as_a_model_is_written_as_the_json_of_its_values() -> None:
    outbox = Outbox(plumbing_tables(MetaData(schema="rows_test")).outbox, source="/greenzone/test")
    insert = BulkInsert(outbox.table, COLUMNS, returning=[], ordered=True)
    data = f"c{COLUMNS.index('data')}"

    as_values = insert.parameters([outbox.row(EVENT, trace={})])[data]
    as_model = insert.parameters([outbox.row(EVENT, trace={}, model=True)])[data]

    assert as_model == as_values  # byte for byte
    assert json.loads(as_model[0]) == EVENT.model_dump(mode="json")
    assert json.loads(as_model[0])["extra_field"] == "kept"


def test_rows_made_at_one_moment_share_it_and_are_sent_with_it_once() -> None:
    outbox = Outbox(plumbing_tables(MetaData(schema="rows_test")).outbox, source="/greenzone/test")
    insert = BulkInsert(outbox.table, COLUMNS, returning=[], ordered=True)
    moment = datetime(2026, 3, 2, 10, 1, tzinfo=UTC)
    before = datetime.now(UTC)

    rows = [outbox.row(EVENT, trace={}, model=True, time=moment) for _ in range(3)]
    rows.append(outbox.cloudevent_row(topic="t", type="x", subject="s", data={}, trace={}, time=moment))

    assert [r["time"] for r in rows] == [moment] * 4
    assert insert.bound(rows)[1][f"c{COLUMNS.index('time')}"] == moment  # one value, not one a row
    assert outbox.row(EVENT, trace={})["time"] >= before  # now, when not given
