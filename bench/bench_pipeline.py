"""pipeline-svc intake throughput and latency, each beside a bare baseline measured in the same run.

    .venv/bin/python bench/bench_pipeline.py [--quick]

Starts an embedded PostgreSQL (fsync on) and the Tansu broker (unless ``GREENZONE_DATABASE_URL`` /
``GREENZONE_KAFKA_BOOTSTRAP`` point at existing ones), a fresh database, then pipeline-svc under uvicorn with 2
workers (migrations, relay and consumers running, as in production) and a bare FastAPI echo app with 2 workers.
Measures, with benchkit's keep-alive load generator on the same machine:

1. signed GitHub ``deployment_status`` webhooks/s (HMAC checked, raw event + deployment + 2 outbox rows in one
   transaction), beside the echo app's requests/s (same bodies, same client, same concurrency): the ratio is what
   the work costs;
2. ``POST /events`` in batches of 500 CDEvents ``pipelinerun.finished`` (schema-validated), 16 batches in flight:
   events/s, beside the database alone: the statements the service's ``accept`` sends for such batches (captured,
   rolled back), replayed with raw asyncpg on 4 connections into a fresh database with nothing else running
   (``storage_ceiling``). No intake can take more on this machine without writing less per event;
   beside it, the CPU each group of processes (the service, PostgreSQL, the broker, the load generator) spent per
   event during that phase, from /proc: where the machine's two cores go;
3. p50/p99 latency of signed webhooks sent open-loop at 500/s (latency from when each was due).

``--analyse-every S`` ANALYZEs the outbox every S seconds of the CDEvents phase, as autoanalyze may while the relay
is behind: the statistics of a burst, which once made the relay's reads scan every published row (bench/README.md).

Targets (issue 3): ≥ 1,000 verified webhooks/s, ≥ 20,000 events/s in batches of 500, p99 < 100 ms at 500/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from benchkit import (
    captured_statements,
    closed_loop,
    cpu_by_group,
    cpu_used,
    create_database,
    drained,
    echo_rate,
    load_average,
    loop_speed,
    open_loop,
    replayed_rate,
    request_bytes,
    running,
    started_stack,
)
from rich.console import Console
from rich.table import Table

from greenzone_common.auth import issue_dev_token
from greenzone_common.db import make_engine, make_sessionmaker
from greenzone_common.migrations import migrate
from greenzone_common.outbox import Outbox
from greenzone_common.plumbing import plumbing_tables
from greenzone_common.settings import DEV_JWT_SECRET
from pipeline_svc.config import Settings
from pipeline_svc.intake import service
from pipeline_svc.main import SPEC
from pipeline_svc.sources import cloudevents
from pipeline_svc.sources.signatures import github_signature

SECRET = "bench-github-secret"
T = TypeVar("T")
CONNECTIONS = 32
#: Batches in flight. Each worker listens on its own SO_REUSEPORT socket and the kernel hashes each connection to
#: one: 4 keep-alive connections split 4/0 or 3/1 as often as 2/2. With 4, the same code gave 8,076 events/s with
#: one worker busy 97% of the time and the other mostly relaying (py-spy), and 13,358 in another start; with 8 and 16,
#: 15,825 and 15,491. With 16 the busier worker rarely gets more than it can take.
BATCH_CONNECTIONS = 16
BATCH_MARK = "~~~~~~~~"  # where a batch's number goes in its template (8 characters, like "%08d")
console = Console(width=None if sys.stdout.isatty() else 150)


# ------------------------------------------------------------------------------------------------------- payloads


def deployment_status(i: int) -> bytes:
    payload = {
        "action": "created",
        "deployment_status": {
            "id": i,
            "state": "success" if i % 10 else "failure",
            "environment": "production",
            "created_at": "2026-03-02T10:00:00Z",
            "updated_at": "2026-03-02T10:00:00Z",
            "target_url": f"https://ci.example/runs/{i}",
        },
        "deployment": {"id": i, "sha": f"{i:040x}", "ref": "main", "environment": "production", "payload": {}},
        "repository": {"full_name": f"octo-org/svc-{i % 20}", "default_branch": "main"},
    }
    return json.dumps(payload).encode()


def webhook(i: int) -> bytes:
    """A signed delivery, as GitHub sends it (signing is the sender's cost, done here before the clock starts
    only for the open-loop run)."""
    body = deployment_status(i)
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "deployment_status",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": github_signature(SECRET, body),
    }
    return request_bytes("POST", "/webhooks/github", headers, body)


def cdevent_batch(start: int, size: int, tag: str = "") -> bytes:
    """``size`` CDEvents ``pipelinerun.finished`` as a CloudEvents batch, ids ``run-<tag><n>`` from ``start``."""
    events = []
    for n in range(start, start + size):
        i = f"{tag}{n}"
        cdevent = {
            "context": {
                "specversion": "0.5.1",
                "id": f"run-{i}",
                "source": "/bench/ci",
                "type": "dev.cdevents.pipelinerun.finished.0.3.0",
                "timestamp": "2026-03-02T10:00:00Z",
            },
            "subject": {
                "id": f"run-{i}",
                "source": "/bench/ci",
                "content": {"pipelineName": f"build-{n % 20}", "uri": f"https://ci.example/{i}", "outcome": "success"},
            },
        }
        events.append(
            {
                "specversion": "1.0",
                "id": f"run-{i}",
                "source": "/bench/ci",
                "type": cdevent["context"]["type"],
                "subject": f"run-{i}",
                "datacontenttype": "application/json",
                "data": cdevent,
            }
        )
    return json.dumps(events).encode()


# ------------------------------------------------------------------------------------------------------- run


async def storage_ceiling(admin_url: str, batches: int) -> float:
    """Events/s the database alone takes for ``POST /events`` batches of 500: each batch's statements, as the
    service's own ``accept`` sends them (captured in a transaction that is rolled back), replayed with raw asyncpg on
    4 connections into a fresh database, with no HTTP, validation or mapping in the loop and no relay beside it."""
    database_url = await create_database(admin_url, "pipeline_ceiling")
    settings = Settings(database_url=database_url)
    await migrate(settings, SPEC.migrations, SPEC.schema)
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    outbox = Outbox(plumbing_tables(SPEC.metadata).outbox, source=SPEC.source)
    headers = {"content-type": cloudevents.BATCH, "x-greenzone-sub": "bench"}
    transactions = []
    try:
        for i in range(batches):
            events = cloudevents.parse_request(headers, cdevent_batch(500_000 + i * 500, 500), max_batch=500)
            deliveries = [service.delivery_of(e, headers) for e in events]
            with captured_statements(engine) as statements:
                async with sessions() as session:
                    await service.accept(session, outbox, deliveries)
                    await session.rollback()
            transactions.append(statements)
    finally:
        await engine.dispose()
    return await replayed_rate(database_url, transactions, 4) * 500


async def counts(database_url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        raw = await conn.fetchval("SELECT count(*) FROM pipeline.raw_events")
        outbox = await conn.fetchval("SELECT count(*) FROM pipeline.outbox")
    finally:
        await conn.close()
    return raw, outbox


async def analysed_during(phase: Coroutine[Any, Any, T], database_url: str, every: float | None) -> T:
    """``phase``, with the outbox ANALYZEd every ``every`` seconds meanwhile (None: never), as autoanalyze may do
    while the relay is behind: statistics that count nearly every row unpublished (see ``relay.RELAY_PLANNING``)."""
    if every is None:
        return await phase

    async def analyse() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            while True:
                await asyncio.sleep(every)
                await conn.execute("ANALYZE pipeline.outbox")
        finally:
            await conn.close()

    task = asyncio.create_task(analyse())
    try:
        return await phase
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def run(quick: bool, analyse_every: float | None = None) -> None:
    seconds = 5.0 if quick else 15.0  # each throughput phase
    latency_seconds = 3.0 if quick else 10.0
    rows: list[tuple[str, str, str, str]] = []

    def note(row: tuple[str, str, str, str]) -> None:
        rows.append(row)
        console.print(" · ".join(row))  # as measured, so a long run shows progress

    load_before, speed_before = load_average(), loop_speed()
    with tempfile.TemporaryDirectory(prefix="greenzone-bench-pipeline-") as tmp, started_stack(Path(tmp)) as stack:
        admin, bootstrap = stack
        database_url = asyncio.run(create_database(admin, "pipeline"))
        env = {
            **os.environ,
            "GREENZONE_DATABASE_URL": database_url,
            "GREENZONE_KAFKA_BOOTSTRAP": bootstrap,
            "GREENZONE_GITHUB_WEBHOOK_SECRET": SECRET,
            "GREENZONE_LOG_LEVEL": "WARNING",
            "GREENZONE_MIGRATE_ON_START": "false",
        }
        # migrate once before two workers start (they would serialise on the advisory lock anyway)
        asyncio.run(migrate(Settings(database_url=database_url), SPEC.migrations, SPEC.schema))
        token = issue_dev_token(DEV_JWT_SECRET, "bench", ["pipeline"])
        batch_headers = {"Content-Type": "application/cloudevents-batch+json", "Authorization": f"Bearer {token}"}

        # request i: one template batch with i in every id (a fixed-width bytes.replace, some 0.1 µs an event):
        # building each batch with json.dumps in the loop cost this process 2 µs an event, on the cores the server
        # needs
        template = request_bytes("POST", "/events", batch_headers, cdevent_batch(0, 500, tag=f"{BATCH_MARK}-"))

        def batch(i: int) -> bytes:
            return template.replace(BATCH_MARK.encode(), b"%08d" % i)

        echo = echo_rate(env, Path(tmp) / "echo.log", webhook, CONNECTIONS, seconds)
        ceiling = asyncio.run(storage_ceiling(admin, 40 if quick else 120))
        with running("pipeline_svc.main", env, Path(tmp) / "pipeline-svc.log") as address:
            asyncio.run(closed_loop("warm-up", address, lambda i: webhook(10_000_000 + i), 8, 1.0))
            hooks = asyncio.run(closed_loop("webhooks", address, webhook, CONNECTIONS, seconds))
            note(
                (
                    "signed GitHub webhooks/s (2 workers)",
                    f"{hooks.rate:,.0f} ({hooks.count:,} sent, {hooks.errors} errors)",
                    f"bare FastAPI echo {echo:,.0f}/s · ratio {hooks.rate / echo:.2f}",
                    "≥ 1,000",
                )
            )
            backlog = [asyncio.run(drained(database_url, "pipeline"))]
            cpu_before = cpu_by_group("pipeline_svc.main", "pipeline-svc")
            batches = asyncio.run(
                analysed_during(
                    closed_loop("batches", address, lambda i: batch(100_000 + i), BATCH_CONNECTIONS, seconds),
                    database_url,
                    analyse_every,
                )
            )
            cpu = cpu_used(cpu_before, cpu_by_group("pipeline_svc.main", "pipeline-svc"))
            note(
                (
                    "CDEvents/s via POST /events (batches of 500)",
                    f"{batches.rate * 500:,.0f} ({batches.count} batches, {batches.errors} errors)",
                    f"{batches.rate:,.2f} batches/s · p50 {batches.pct(0.5):.0f} ms a batch · the database alone "
                    f"{ceiling:,.0f}/s · ratio {batches.rate * 500 / ceiling:.2f}",
                    "≥ 20,000",
                )
            )
            events = batches.count * 500
            note(
                (
                    "CPU an event in the CDEvents phase (µs)",
                    " · ".join(
                        f"{name} {seconds / events * 1e6:.0f}" for name, seconds in sorted(cpu.items()) if seconds
                    ),
                    f"{sum(cpu.values()) / batches.seconds:.2f} of {os.cpu_count()} cores busy; each group's CPU time "
                    "over the phase, from /proc",
                    "",
                )
            )
            backlog.append(asyncio.run(drained(database_url, "pipeline")))
            note(
                (
                    "outbox drained after each throughput phase (s)",
                    " / ".join(f"{s:.1f}" for s in backlog),
                    "the relay publishing what the phase staged, before the next phase starts",
                    "",
                )
            )
            scheduled = [webhook(20_000_000 + i) for i in range(int(500 * latency_seconds))]
            latency = asyncio.run(open_loop("latency", address, scheduled, 500))
            note(
                (
                    "webhook latency at 500/s, p50 / p99 (ms)",
                    f"{latency.pct(0.5):.1f} / {latency.pct(0.99):.1f}",
                    f"answered {latency.rate:,.0f}/s, {latency.errors} errors",
                    "p99 < 100",
                )
            )
        raw, outbox = asyncio.run(counts(database_url))
    table = Table(title=f"pipeline-svc intake — {platform.node()}, {os.cpu_count()} cores{' (quick)' if quick else ''}")
    for column in ("measure", "measured", "beside", "target"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(
        f"raw events stored {raw:,}, outbox rows {outbox:,}; load average (1 min) before / after: "
        f"{load_before:.1f} / {load_average():.1f}; an empty Python loop before / after: {speed_before:.0f} / "
        f"{loop_speed():.0f} ns an iteration; Python {platform.python_version()}, PostgreSQL fsync on"
        + (f"; the outbox ANALYZEd every {analyse_every:g} s of the CDEvents phase" if analyse_every else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: short phases")
    parser.add_argument(
        "--analyse-every",
        type=float,
        metavar="S",
        help="ANALYZE the outbox every S seconds during the CDEvents phase (the statistics of a burst)",
    )
    args = parser.parse_args()
    run(args.quick, args.analyse_every)


if __name__ == "__main__":
    main()
