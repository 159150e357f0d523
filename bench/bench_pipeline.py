"""pipeline-svc intake throughput and latency, each beside a bare baseline measured in the same run.

    .venv/bin/python bench/bench_pipeline.py [--quick]

Starts an embedded PostgreSQL (fsync on) and the Tansu broker (unless ``GREENZONE_DATABASE_URL`` /
``GREENZONE_KAFKA_BOOTSTRAP`` point at existing ones), a fresh database, then pipeline-svc under uvicorn with 2
workers (migrations, relay and consumers running, as in production) and a bare FastAPI echo app with 2 workers.
Measures, with an asyncio httpx load generator on the same machine:

1. signed GitHub ``deployment_status`` webhooks/s (HMAC checked, raw event + deployment + 2 outbox rows in one
   transaction), beside the echo app's requests/s (same bodies, same concurrency): the ratio is what the work costs;
2. ``POST /events`` in batches of 500 CDEvents ``pipelinerun.finished`` (schema-validated): events/s;
3. p50/p99 latency of signed webhooks sent open-loop at 500/s.

Targets (issue 3): ≥ 1,000 verified webhooks/s, ≥ 20,000 events/s in batches of 500, p99 < 100 ms at 500/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI, Request, Response
from rich.console import Console
from rich.table import Table

from greenzone_common.auth import issue_dev_token
from greenzone_common.devstack import EmbeddedPostgres, Tansu, free_port
from greenzone_common.migrations import migrate
from greenzone_common.settings import DEV_JWT_SECRET
from pipeline_svc.config import Settings
from pipeline_svc.main import SPEC
from pipeline_svc.sources.signatures import github_signature

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-github-secret"
console = Console(width=None if sys.stdout.isatty() else 150)

echo_app = FastAPI()


@echo_app.post("/echo")
async def echo(request: Request) -> Response:
    """The baseline: read the body and answer, nothing else."""
    body = await request.body()
    return Response(content=json.dumps({"bytes": len(body)}), media_type="application/json", status_code=202)


# ------------------------------------------------------------------------------------------------------- the stack


@contextlib.contextmanager
def stack() -> Iterator[tuple[str, str]]:
    tmp = tempfile.TemporaryDirectory(prefix="greenzone-bench-pipeline-")
    postgres: EmbeddedPostgres | None = None
    tansu: Tansu | None = None
    try:
        admin = os.environ.get("GREENZONE_DATABASE_URL", "")
        if not admin:
            fsync_off = os.environ.get("BENCH_PG_FAST") == "1"  # for profiling only; figures are with fsync on
            postgres = EmbeddedPostgres(Path(tmp.name) / "pg" / "data", fast=fsync_off).start()
            admin = postgres.url
        bootstrap = os.environ.get("GREENZONE_KAFKA_BOOTSTRAP", "")
        if not bootstrap:
            tansu = Tansu(log_path=Path(tmp.name) / "tansu.log").start()
            bootstrap = tansu.bootstrap
        yield admin, bootstrap
    finally:
        if tansu is not None:
            tansu.stop()
        if postgres is not None:
            postgres.stop()
        tmp.cleanup()


async def fresh_database(admin: str) -> str:
    name = f"greenzone_bench_pipeline_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin.partition("?")[0].rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def uvicorn(target: str, port: int, env: dict[str, str], app_dir: Path | None = None) -> Iterator[str]:
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    cmd += ["--log-level", "warning", "--no-access-log"]
    if target.endswith("create_app"):
        cmd.append("--factory")
    if app_dir is not None:
        cmd += ["--app-dir", str(app_dir)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_ready(url: str, path: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + path)).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url}{path} not ready after {timeout}s")


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


def webhook(i: int) -> tuple[bytes, dict[str, str]]:
    body = deployment_status(i)
    return body, {
        "content-type": "application/json",
        "x-github-event": "deployment_status",
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": github_signature(SECRET, body),
    }


def cdevent_batch(start: int, size: int) -> bytes:
    events = []
    for i in range(start, start + size):
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
                "content": {"pipelineName": f"build-{i % 20}", "uri": f"https://ci.example/{i}", "outcome": "success"},
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


# ------------------------------------------------------------------------------------------------------- load


async def closed_loop(
    url: str, make: Callable[[int], tuple[bytes, dict[str, str]]], concurrency: int, seconds: float, offset: int = 0
) -> tuple[float, int, int]:
    """Keep ``concurrency`` requests in flight for ``seconds``; (answered requests/s, answered, non-2xx or failed)."""
    counter = itertools.count(offset)
    done = 0
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                body, headers = make(next(counter))
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    errors += 1
                    continue
                done += 1
                if response.status_code >= 300:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return done / elapsed, done, errors


async def open_loop(
    url: str, rate: float, seconds: float, offset: int, max_in_flight: int = 128
) -> tuple[list[float], int, int, float]:
    """Send at ``rate``/s whatever the answers (latencies in ms, errors, skipped, answered/s). When
    ``max_in_flight`` requests are already waiting the server is saturated: a send is skipped and counted, so a
    slow server cannot make the run last forever."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    skipped = 0
    in_flight = 0
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(i: int) -> None:
            nonlocal errors, in_flight
            body, headers = webhook(offset + i)
            t0 = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
                return
            finally:
                in_flight -= 1
            latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code >= 300:
                errors += 1

        tasks = []
        started = time.perf_counter()
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight >= max_in_flight:
                skipped += 1
                continue
            in_flight += 1
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return sorted(latencies), errors, skipped, len(latencies) / elapsed


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def run(quick: bool) -> None:
    seconds = 5.0 if quick else 20.0  # each throughput phase
    latency_seconds = 3.0 if quick else 10.0
    concurrency = 8  # httpx's pool degrades past this on 2 shared cores (measured: 8 beats 32 on the echo app)
    with stack() as (admin, bootstrap):
        database_url = await fresh_database(admin)
        env = {
            **os.environ,
            "GREENZONE_DATABASE_URL": database_url,
            "GREENZONE_KAFKA_BOOTSTRAP": bootstrap,
            "GREENZONE_GITHUB_WEBHOOK_SECRET": SECRET,
            "GREENZONE_LOG_LEVEL": "WARNING",
        }
        token = issue_dev_token(DEV_JWT_SECRET, "bench", ["pipeline"])
        # migrate once before two workers start (they would serialise on the advisory lock anyway)
        await migrate(Settings(database_url=database_url), SPEC.migrations, SPEC.schema)
        results: list[tuple[str, str, str, str]] = []

        def note(row: tuple[str, str, str, str]) -> None:
            results.append(row)
            console.print(" · ".join(row))  # as measured, so a long run shows progress

        with uvicorn("bench_pipeline:echo_app", free_port(), env, app_dir=ROOT / "bench") as echo_url:
            await wait_ready(echo_url, "/docs")
            await closed_loop(echo_url + "/echo", webhook, concurrency, 1.0)  # warm up
            echo_rate, _, _ = await closed_loop(echo_url + "/echo", webhook, concurrency, seconds)
        with uvicorn("pipeline_svc.main:create_app", free_port(), env) as url:
            await wait_ready(url, "/readyz")
            await closed_loop(url + "/webhooks/github", webhook, concurrency, 1.0, offset=10_000_000)
            rate, done, errors = await closed_loop(url + "/webhooks/github", webhook, concurrency, seconds)
            note(
                (
                    "signed GitHub webhooks/s (2 workers)",
                    f"{rate:,.0f} ({done:,} sent, {errors} errors)",
                    f"echo {echo_rate:,.0f}/s · ratio {rate / echo_rate:.2f}",
                    "≥ 1,000",
                )
            )
            headers = {"content-type": "application/cloudevents-batch+json", "authorization": f"Bearer {token}"}

            def batch(i: int) -> tuple[bytes, dict[str, str]]:
                return cdevent_batch(i * 500, 500), headers

            batch_rate, batches, batch_errors = await closed_loop(url + "/events", batch, 4, seconds)
            note(
                (
                    "CDEvents/s via POST /events (batches of 500)",
                    f"{batch_rate * 500:,.0f} ({batches} batches, {batch_errors} errors)",
                    f"{batch_rate:,.2f} batches/s",
                    "≥ 20,000",
                )
            )
            latencies, lat_errors, skipped, achieved = await open_loop(
                url + "/webhooks/github", 500, latency_seconds, 20_000_000
            )
            note(
                (
                    "webhook latency at 500/s, p50 / p99 (ms)",
                    f"{percentile(latencies, 0.5):.1f} / {percentile(latencies, 0.99):.1f}",
                    f"answered {achieved:,.0f}/s: {len(latencies)} answers, {lat_errors} errors, "
                    f"{skipped} not sent (128 in flight: saturated)",
                    "p99 < 100",
                )
            )
        table = Table(
            title=f"pipeline-svc intake — {platform.node()}, {os.cpu_count()} cores{' (quick)' if quick else ''}"
        )
        for column in ("measure", "measured", "beside", "target"):
            table.add_column(column)
        for row in results:
            table.add_row(*row)
        console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small counts")
    args = parser.parse_args()
    asyncio.run(run(args.quick))


if __name__ == "__main__":
    main()
