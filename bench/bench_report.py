"""report-svc: /dora latency over a large history, the first /dora after a start, projection throughput, and
freshness from a pipeline-svc webhook.

    .venv/bin/python bench/bench_report.py [--quick] [--deployments N] [--services S] [--events E]

Starts an embedded PostgreSQL and the Tansu broker (or uses ``GREENZONE_DATABASE_URL`` / ``GREENZONE_KAFKA_BOOTSTRAP``),
migrates report-svc's and pipeline-svc's schemas into a fresh database, then:

1. seeds N production deployment reports (default 1,000,000; every 9th a failure) and 3 x N default-branch commits
   across S services (default 200) over two years, plus incidents and rollbacks, with ``INSERT … SELECT
   generate_series`` straight into the facts tables (not timed: this is the history, not the pipeline);
2. first start of report-svc as ``make run`` starts it (uvicorn subprocess): the first ``GET /dora`` for one service
   and for all services over the last 90 days as soon as ``/readyz`` answers (nothing stored yet: every index is
   built from the facts), then warm latencies (targets: p95 < 50 ms and < 250 ms);
3. restart: the first ``GET /dora`` (one service, then all) after a restart, when the indexes the first run stored
   are read back;
4. projection throughput: E pipeline events (deployments and pushes) produced to the broker while report-svc is
   stopped; after a third start, the rate at which it drains that backlog, first applied event to last (target
   >= 5,000 events/s). A ``CHECKPOINT`` after seeding and before this phase keeps the checkpointer from writing
   the seeded history during it (with fsync on, that halved the rate);
5. freshness (target p99 < 1 s): pipeline-svc is started too, and signed GitHub ``deployment_status`` webhooks are
   sent to it at 500/s; for every 50th (a service of its own) the time from pipeline-svc's 202 to ``/dora`` of
   that service counting the deployment (webhook → outbox → relay → broker → report-svc → /dora). The same with
   deployments produced straight to the broker, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

from greenzone_common import devstack, envelope, kafka
from greenzone_common.contracts import pipeline as pl
from greenzone_common.contracts.base import EventData
from greenzone_common.devstack import EmbeddedPostgres, Tansu
from greenzone_common.migrations import migrate
from greenzone_common.testing.helpers import token
from pipeline_svc.config import Settings as PipelineSettings
from pipeline_svc.main import SPEC as PIPELINE_SPEC
from pipeline_svc.sources.signatures import github_signature
from report_svc.config import Settings
from report_svc.main import SPEC

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
console = Console(width=None if sys.stdout.isatty() else 150)
HEADERS = {"Authorization": f"Bearer {token('bench', 'viewer')}"}
GITHUB_SECRET = "bench-github-secret"


@contextlib.contextmanager
def stack() -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="greenzone-bench-report-") as tmp:
        postgres: EmbeddedPostgres | None = None
        tansu: Tansu | None = None
        try:
            admin = os.environ.get("GREENZONE_DATABASE_URL", "")
            if not admin:
                postgres = EmbeddedPostgres(Path(tmp) / "pg" / "data", fast=False).start()
                admin = postgres.url
            bootstrap = os.environ.get("GREENZONE_KAFKA_BOOTSTRAP", "")
            if not bootstrap:
                tansu = Tansu(log_path=Path(tmp) / "tansu.log").start()
                bootstrap = tansu.bootstrap
            yield admin, bootstrap
        finally:
            if tansu is not None:
                tansu.stop()
            if postgres is not None:
                postgres.stop()


SEED = """
INSERT INTO report.deployment_reports (report_key, service, environment, at, outcome, commit, version, source)
SELECT 'seed:' || g, 'svc-' || (g % $2), 'production',
       $3::timestamptz - make_interval(secs => ($1 - g) * (63072000.0 / $1)),
       CASE WHEN g % 9 = 0 THEN 'failure' ELSE 'success' END, 'sha-' || g, '1.' || g, 'github'
FROM generate_series(1, $1) AS g;

INSERT INTO report.commits (service, commit_key, sha, started_at, pushed_at)
SELECT 'svc-' || (g / 3 % $2), 'sha:c-' || g, 'c-' || g,
       $3::timestamptz - make_interval(secs => ($1 - g / 3) * (63072000.0 / $1) + 3600 * (1 + g % 47)),
       $3::timestamptz - make_interval(secs => ($1 - g / 3) * (63072000.0 / $1) + 600)
FROM generate_series(3, 3 * $1 + 2) AS g;

INSERT INTO report.incidents (incident_id, service, environment, started_at, resolved_at)
SELECT 'inc-' || g, 'svc-' || (g % $2), 'production',
       $3::timestamptz - make_interval(secs => ($1 - g) * (63072000.0 / $1) - 300),
       $3::timestamptz - make_interval(secs => ($1 - g) * (63072000.0 / $1) - 300 - 60 * (g % 240))
FROM generate_series(50, $1, 97) AS g;

INSERT INTO report.fact_versions (service, writer, version)
SELECT 'svc-' || g, 'seed', 1 FROM generate_series(0, $2 - 1) AS g WHERE $1 > 0 AND $3::timestamptz IS NOT NULL;

INSERT INTO report.rollbacks (rollback_key, service, environment, at)
SELECT 'rb-' || g, 'svc-' || (g % $2), 'production',
       $3::timestamptz - make_interval(secs => ($1 - g) * (63072000.0 / $1) - 120)
FROM generate_series(20, $1, 151) AS g;
"""


async def seed(dsn: str, deployments: int, services: int, now: datetime) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        for statement in [s for s in SEED.split(";") if s.strip()]:
            await conn.execute(statement, deployments, services, now)
        await conn.execute("ANALYZE")
        await conn.execute("CHECKPOINT")  # the seeded pages written now, not by the checkpointer during a phase
    finally:
        await conn.close()
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


async def first_call(client: httpx.AsyncClient, params: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """(ms, answer) of one /dora call."""
    t = time.perf_counter()
    first = await client.get("/dora", params=params, headers=HEADERS, timeout=900)
    elapsed = (time.perf_counter() - t) * 1000
    first.raise_for_status()
    return elapsed, first.json()


async def latency(client: httpx.AsyncClient, params: dict[str, str], n: int, timeout: float) -> list[float]:
    """Warm latencies in ms."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = await client.get("/dora", params=params, headers=HEADERS, timeout=timeout)
        out.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    return out


def answered(body: dict[str, Any]) -> str:
    """What the answer covered, to show the latency is for real figures."""
    return (
        f"{body['change_failure_rate']['deployments']:,} deployments, "
        f"{body['lead_time_for_changes']['changes']:,} changes"
    )


def message(data: EventData) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return envelope.encode(
        id=str(uuid.uuid4()),
        source="/greenzone/bench",
        type=data.event_type,
        subject=data.key(),
        time=datetime.now(UTC),
        data=data.model_dump(mode="json"),
    )


def throughput_messages(events: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    now = datetime.now(UTC)
    messages = []
    for n in range(events):
        service = f"tp-{n % 50}"
        if n % 2:
            data: EventData = pl.DeploymentObserved(
                service=service,
                environment="production",
                commit=f"tp{n}",
                outcome="success",
                at=now - timedelta(minutes=n),
                source="github",
                source_id=f"tp{n}",
            )
        else:
            data = pl.CommitsPushed(
                service=service,
                repository=f"org/{service}",
                branch="main",
                default_branch="main",
                commits=[{"sha": f"tpc{n}", "timestamp": now - timedelta(minutes=n + 30)}],
                pushed_at=now - timedelta(minutes=n + 5),
                source="github",
            )
        messages.append(message(data))
    return messages


async def produce(settings: Settings, messages: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    await kafka.ensure_topics(settings, kafka.with_dlqs([pl.PIPELINE_TOPIC]))
    producer = kafka.producer(settings, linger_ms=5)
    await producer.start()
    try:
        for key, value, headers in messages:
            await producer.send(pl.PIPELINE_TOPIC, value=value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def drain_rate(dsn: str, events: int) -> float:
    """The projection draining a backlog of ``events``: from the first applied event to the last."""
    conn = await asyncpg.connect(dsn)
    try:
        first_at: float | None = None
        first_count = 0
        while True:  # polling the database is the measurement
            count = await conn.fetchval("SELECT count(*) FROM report.inbox WHERE consumer_group LIKE '%pipeline%'")
            if first_at is None and count > 0:
                first_at, first_count = time.perf_counter(), count
            if count >= events and first_at is not None:
                return (count - first_count) / max(time.perf_counter() - first_at, 1e-9)
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def freshness(settings: Settings, client: httpx.AsyncClient, rate: int, seconds: float) -> list[float]:
    """Deployments at ``rate``/s; every 50th goes to a fresh service whose /dora is polled until it counts it."""
    producer = kafka.producer(settings)
    await producer.start()
    samples: list[float] = []
    watchers: list[asyncio.Task[None]] = []
    run = uuid.uuid4().hex[:6]
    window = {
        "from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }

    async def watch(service: str, sent_at: float) -> None:
        while time.perf_counter() - sent_at < 30:
            r = await client.get("/dora", params={**window, "service": service}, headers=HEADERS)
            if r.json()["deployment_frequency"]["deployments"] == 1:
                samples.append((time.perf_counter() - sent_at) * 1000)
                return
            await asyncio.sleep(0.1)

    try:
        total = int(rate * seconds)
        start = time.perf_counter()
        for n in range(total):
            fresh = n % 50 == 0
            service = f"fresh-{run}-{n}" if fresh else f"busy-{n % 20}"
            data = pl.DeploymentObserved(
                service=service,
                environment="production",
                commit=f"f{run}{n}",
                outcome="success",
                at=datetime.now(UTC),
                source="github",
                source_id=f"f{run}{n}",
            )
            key, value, headers = message(data)
            await producer.send(pl.PIPELINE_TOPIC, value=value, key=key, headers=headers)
            if fresh:
                watchers.append(asyncio.create_task(watch(service, time.perf_counter())))
            delay = start + (n + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()
        await asyncio.gather(*watchers)
    finally:
        await producer.stop()
    return samples


def deployment_status(repository: str, delivery: int, at: datetime) -> tuple[bytes, dict[str, str]]:
    """A signed GitHub ``deployment_status`` webhook: a successful production deployment of ``repository``."""
    stamp = at.isoformat().replace("+00:00", "Z")
    body = json.dumps(
        {
            "action": "created",
            "deployment_status": {
                "id": delivery,
                "state": "success",
                "environment": "production",
                "created_at": stamp,
                "updated_at": stamp,
            },
            "deployment": {"id": delivery, "sha": f"{delivery:040x}", "ref": "main", "environment": "production"},
            "repository": {"full_name": repository, "default_branch": "main"},
        }
    ).encode()
    return body, {
        "content-type": "application/json",
        "x-github-event": "deployment_status",
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": github_signature(GITHUB_SECRET, body),
    }


async def webhook_freshness(
    pipeline_url: str, client: httpx.AsyncClient, rate: int, seconds: float
) -> tuple[list[float], int, int, float]:
    """Signed webhooks to pipeline-svc at ``rate``/s; every 50th names a repository (service) of its own, whose
    /dora is polled from pipeline-svc's 202 until it counts the deployment. (latencies in ms, rejected, errors,
    accepted webhooks/s). At most 64 requests are in flight: a request waiting for one of them is still sent, later
    (httpx's pool slows down quadratically with thousands of queued requests)."""
    samples: list[float] = []
    watchers: list[asyncio.Task[None]] = []
    senders: list[asyncio.Task[None]] = []
    rejected = errors = 0
    run = uuid.uuid4().hex[:6]
    window = {
        "from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }

    async def watch(service: str, accepted_at: float) -> None:
        while time.perf_counter() - accepted_at < 30:
            r = await client.get("/dora", params={**window, "service": service}, headers=HEADERS)
            if r.json()["deployment_frequency"]["deployments"] == 1:
                samples.append((time.perf_counter() - accepted_at) * 1000)
                return
            await asyncio.sleep(0.05)

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    in_flight = asyncio.Semaphore(64)
    async with httpx.AsyncClient(base_url=pipeline_url, limits=limits, timeout=30) as hooks:

        async def send(n: int) -> None:
            nonlocal rejected, errors
            fresh = n % 50 == 0
            repository = f"octo-org/wh-{run}-{n}" if fresh else f"octo-org/busy-{n % 20}"
            try:
                async with in_flight:
                    body, headers = deployment_status(repository, 10_000_000 + n, datetime.now(UTC))
                    response = await hooks.post("/webhooks/github", content=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
                return
            if response.status_code != 202:
                rejected += 1
                return
            if fresh:
                watchers.append(asyncio.create_task(watch(f"wh-{run}-{n}", time.perf_counter())))

        total = int(rate * seconds)
        start = time.perf_counter()
        for n in range(total):
            senders.append(asyncio.create_task(send(n)))
            delay = start + (n + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*senders)
        sent_rate = total / (time.perf_counter() - start)
        await asyncio.gather(*watchers)
    return samples, rejected, errors, sent_rate


async def wait_ready(client: httpx.AsyncClient, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/readyz")).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{client.base_url} did not become ready")
        await asyncio.sleep(0.1)


async def stored_indexes(dsn: str, timeout: float = 120) -> int:
    """Wait until report-svc has stored the indexes worth storing (in the background, after building them): until
    their number has not changed for 2 s."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        count, since = -1, time.monotonic()
        while True:
            now = int(await conn.fetchval("SELECT count(*) FROM report.dora_indexes"))
            if now != count:
                count, since = now, time.monotonic()
            if time.monotonic() - since >= 2 or time.monotonic() > deadline:
                return count
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def checkpoint(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def note(text: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')} (load {load()})[/dim] {text}")


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


async def main(args: argparse.Namespace) -> None:
    deployments = args.deployments or (20_000 if args.quick else 1_000_000)
    events = args.events or (4_000 if args.quick else 20_000)
    fresh_seconds = 4.0 if args.quick else 10.0
    loads: dict[str, str] = {"start": load()}
    with stack() as (admin, bootstrap):
        database = f"bench_report_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{database}"')
        await conn.close()
        dsn = admin.rpartition("/")[0] + "/" + database
        settings = Settings(database_url=dsn, kafka_bootstrap=bootstrap, relay_poll_interval=0.1, log_level="WARNING")
        await migrate(settings, SPEC.migrations, SPEC.schema)
        await migrate(PipelineSettings(database_url=dsn), PIPELINE_SPEC.migrations, PIPELINE_SPEC.schema)
        now = datetime.now(UTC)
        with console.status(f"seeding {deployments:,} deployments and {3 * deployments:,} commits"):
            seeded = await seed(dsn, deployments, args.services, now)
        port = devstack.free_port()
        env = {
            **os.environ,
            "GREENZONE_DATABASE_URL": dsn,
            "GREENZONE_KAFKA_BOOTSTRAP": bootstrap,
            "GREENZONE_LOG_LEVEL": "WARNING",
            "GREENZONE_CONSUMER_GROUP_SUFFIX": f".bench{uuid.uuid4().hex[:6]}",
            "GREENZONE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        }
        period = {"from": (now - timedelta(days=90)).isoformat(), "to": now.isoformat()}
        one_params = {**period, "service": "svc-7"}
        with tempfile.TemporaryDirectory() as logs:
            base = f"http://127.0.0.1:{port}"
            # 2. first start: nothing stored, every index built from the facts
            loads["first start"] = load()
            proc = devstack.start_service("report_svc.main", port, env, Path(logs) / "report-1.log")
            try:
                async with httpx.AsyncClient(base_url=base, timeout=600) as client:
                    await wait_ready(client)
                    one_first, _ = await first_call(client, one_params)
                    every_first, _ = await first_call(client, period)
                    note(f"first /dora after the first start: {one_first:,.0f} ms one service, {every_first:,.0f} all")
                    one = await latency(client, one_params, 10 if args.quick else 30, 600)
                    every = await latency(client, period, 2 if args.quick else 5, 600)
                    _, one_answer = await first_call(client, one_params)
                    _, every_answer = await first_call(client, period)
                stored = await stored_indexes(dsn)
            finally:
                devstack.stop_process(proc)
            # 3. restart: the stored indexes are read back
            loads["restart"] = load()
            proc = devstack.start_service("report_svc.main", port, env, Path(logs) / "report-2.log")
            try:
                async with httpx.AsyncClient(base_url=base, timeout=600) as client:
                    await wait_ready(client)
                    one_restart, _ = await first_call(client, one_params)
                    every_restart, restart_answer = await first_call(client, period)
                    note(f"first /dora after a restart: {one_restart:,.0f} ms one service, {every_restart:,.0f} ms all")
                assert restart_answer == every_answer, "the figures after a restart differ"
            finally:
                devstack.stop_process(proc)
            # 4. a backlog for the projection to drain as soon as the service starts again
            await produce(settings, throughput_messages(events))
            await checkpoint(dsn)  # the stored indexes' pages too
            pipeline_port = devstack.free_port()
            pipeline = devstack.start_service(  # two workers, as bench_pipeline.py runs it
                "pipeline_svc.main", pipeline_port, env, Path(logs) / "pipeline.log", extra=["--workers", "2"]
            )
            loads["throughput"] = load()
            proc = devstack.start_service("report_svc.main", port, env, Path(logs) / "report-3.log")
            try:
                rate = await drain_rate(dsn, events)
                note(f"projection drained {events:,} events at {rate:,.0f} events/s")
                async with httpx.AsyncClient(base_url=base, timeout=600) as client:
                    await wait_ready(client)
                    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pipeline_port}") as p:
                        await wait_ready(p)
                    # 5. freshness
                    loads["freshness"] = load()
                    hooks, rejected, errors, hook_rate, fresh = [], 0, 0, 0.0, []
                    if not args.skip_freshness:
                        hooks, rejected, errors, hook_rate = await webhook_freshness(
                            f"http://127.0.0.1:{pipeline_port}", client, 500, fresh_seconds
                        )
                        fresh = await freshness(settings, client, 500, fresh_seconds)
            finally:
                devstack.stop_process(proc)
                devstack.stop_process(pipeline)
    loads["end"] = load()

    table = Table(
        title=f"report-svc — {deployments:,} production deployments, {3 * deployments:,} commits, "
        f"{args.services} services (seeded in {seeded:.1f} s)"
    )
    for column in ("measure", "p50", "p95 / p99", "target", "met"):
        table.add_column(column)
    table.add_row(
        f"/dora one service, 90 days (ms): {answered(one_answer)}",
        f"{pct(one, 0.5):.1f}",
        f"p95 {pct(one, 0.95):.1f}",
        "p95 < 50",
        str(pct(one, 0.95) < 50),
    )
    table.add_row(
        f"/dora all services, 90 days (ms): {answered(every_answer)}",
        f"{pct(every, 0.5):.1f}",
        f"p95 {pct(every, 0.95):.1f}",
        "p95 < 250",
        str(pct(every, 0.95) < 250),
    )
    table.add_row(
        "first /dora after the first start, nothing stored (ms): one service, then all",
        f"{one_first:,.0f} / {every_first:,.0f}",
        "",
        "",
        "",
    )
    table.add_row(
        f"first /dora after a restart, {stored} indexes stored (ms): one service, then all",
        f"{one_restart:,.0f} / {every_restart:,.0f}",
        "",
        "",
        "",
    )
    table.add_row("projection throughput (events/s)", f"{rate:,.0f}", "", ">= 5,000", str(rate >= 5000))
    table.add_row(
        f"freshness at 500 webhooks/s ({hook_rate:,.0f}/s answered), pipeline-svc 202 -> /dora (ms)"
        f"{_failures(rejected, errors)}",
        f"{statistics.median(hooks):.0f}" if hooks else "-",
        f"p99 {pct(hooks, 0.99):.0f} ({len(hooks)} samples)" if hooks else "-",
        "p99 < 1,000",
        str(bool(hooks) and pct(hooks, 0.99) < 1000),
    )
    table.add_row(
        "freshness at 500 events/s, broker -> /dora (ms)",
        f"{statistics.median(fresh):.0f}" if fresh else "-",
        f"p99 {pct(fresh, 0.99):.0f} ({len(fresh)} samples)" if fresh else "-",
        "",
        "",
    )
    console.print(table)
    console.print("load average (1/5/15 min) " + "; ".join(f"{k}: {v}" for k, v in loads.items()))


def _failures(rejected: int, errors: int) -> str:
    return f"; {rejected} not accepted, {errors} failed" if rejected or errors else ""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20,000 deployments")
    parser.add_argument("--deployments", type=int, default=0)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--events", type=int, default=0, help="backlog for the throughput phase")
    parser.add_argument("--skip-freshness", action="store_true", help="stop after the throughput phase")
    asyncio.run(main(parser.parse_args()))
