"""change-svc throughput and latency over HTTP, as deployed: uvicorn with 2 workers, PostgreSQL, the broker.

    .venv/bin/python bench/bench_change.py [--quick] [--workers 2] [--concurrency 64] [--seconds 15] [--rate 200]

Starts an embedded PostgreSQL (fsync on) and the Tansu broker unless ``GREENZONE_DATABASE_URL`` /
``GREENZONE_KAFKA_BOOTSTRAP`` point at existing ones, creates a fresh database, starts change-svc as ``make run``
does (``uvicorn change_svc.main:create_app --factory --workers N``: migrations, relay and consumers included), then
measures:

1. creations/s: ``POST /changes`` (risk from the projections, the change row, its audit entry and its outbox event
   in one transaction) from ``--concurrency`` keep-alive connections for ``--seconds``;
2. approvals/s: ``POST /changes/{id}/approvals`` on changes created and submitted beforehand (untimed), one
   approval each (a low-risk change: the approval decides it, so each call also stages approval.recorded,
   approved and a CDEvents ticket.updated);
3. latency at a fixed rate (measured first, on a quiet service): ``--rate`` creations per second, open loop (each
   request's latency counts from the moment it was due, so a stalled server cannot hide queueing), p50/p95/p99.

The load generator is a minimal HTTP/1.1 keep-alive client on asyncio streams (no httpx in the hot loop), so that
as much of the machine as possible is left to the service. It shares the machine with the service, PostgreSQL and
the broker: the figures are those of this machine, printed with its core count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

from greenzone_common import devstack
from greenzone_common.devstack import EmbeddedPostgres, Tansu
from greenzone_common.testing.helpers import token

CREATE_TARGET = 800.0  # /s
APPROVE_TARGET = 800.0  # /s
P99_TARGET_MS = 100.0  # at 200/s

console = Console(width=None if sys.stdout.isatty() else 150)


# --------------------------------------------------------------------------------------------------- infrastructure


@contextlib.contextmanager
def started_stack(tmp: Path) -> Iterator[tuple[str, str]]:
    """(admin database URL, bootstrap): the environment's, or embedded ones stopped on the way out."""
    postgres: EmbeddedPostgres | None = None
    tansu: Tansu | None = None
    try:
        admin_url = os.environ.get("GREENZONE_DATABASE_URL", "")
        if not admin_url:
            postgres = EmbeddedPostgres(tmp / "pg" / "data", fast=False).start()  # fsync on
            admin_url = postgres.url
        bootstrap = os.environ.get("GREENZONE_KAFKA_BOOTSTRAP", "")
        if not bootstrap:
            tansu = Tansu(log_path=tmp / "tansu.log").start()
            bootstrap = tansu.bootstrap
        yield admin_url, bootstrap
    finally:
        try:
            if tansu is not None:
                tansu.stop()
        finally:
            if postgres is not None:
                postgres.stop()


async def create_database(admin_url: str) -> str:
    name = f"greenzone_bench_change_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_url.partition("?")[0].rpartition("/")
    return f"{base}/{name}"


@contextlib.contextmanager
def running_service(database_url: str, bootstrap: str, workers: int, log: Path) -> Iterator[str]:
    port = devstack.free_port()
    env = devstack.service_env(
        dict(os.environ),
        {
            "GREENZONE_DATABASE_URL": database_url,
            "GREENZONE_KAFKA_BOOTSTRAP": bootstrap,
            "GREENZONE_LOG_LEVEL": "WARNING",
            "GREENZONE_CONSUMER_GROUP_SUFFIX": f".bench{uuid.uuid4().hex[:6]}",
        },
    )
    proc = devstack.start_service("change_svc.main", port, env, log, extra=["--workers", str(workers)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"change-svc did not become ready; see {log}")
            time.sleep(0.3)
        yield base
    finally:
        devstack.stop_process(proc)


# --------------------------------------------------------------------------------------------------- HTTP client


class Connection:
    """One HTTP/1.1 keep-alive connection; requests on it are sequential."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def host_port(base: str) -> tuple[str, int]:
    host, _, port = base.removeprefix("http://").partition(":")
    return host, int(port)


REQUESTER = {"Authorization": f"Bearer {token('bench-requester', 'requester')}", "Content-Type": "application/json"}
APPROVER = {"Authorization": f"Bearer {token('bench-approver', 'approver')}", "Content-Type": "application/json"}


def change_body(i: int) -> bytes:
    return json.dumps(
        {
            "title": f"Bench change {i}",
            "type": "normal",
            "service": f"svc-{i % 50}",
            "environment": "staging" if i % 3 else "production",
            "planned_start": "2031-03-02T09:00:00Z",
            "planned_end": "2031-03-02T10:00:00Z",
            "commits": [f"{i:040x}"],
            "version": f"1.{i % 50}.0",
        }
    ).encode()


# --------------------------------------------------------------------------------------------------- measurements


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def closed_loop(
    name: str, base: str, concurrency: int, jobs: list[tuple[str, str, dict[str, str], bytes]], seconds: float
) -> Result:
    """``concurrency`` connections take jobs from the list until it is empty or ``seconds`` have passed."""
    host, port = host_port(base)
    queue: asyncio.Queue[tuple[str, str, dict[str, str], bytes]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        conn = Connection(host, port)
        try:
            while time.perf_counter() < deadline:
                try:
                    method, path, headers, body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                status, _ = await conn.request(method, path, headers, body)
                latencies.append((time.perf_counter() - t0) * 1000)
                if status >= 300:
                    errors += 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, len(latencies), errors, time.perf_counter() - started, latencies)


async def open_loop(base: str, rate: float, seconds: float, first: int) -> Result:
    """Creations at a fixed rate; latency from when each request was due."""
    host, port = host_port(base)
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(Connection(host, port))
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds)

    async def one(i: int, due: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status, _ = await conn.request("POST", "/changes", REQUESTER, change_body(first + i))
        finally:
            pool.put_nowait(conn)
        latencies.append((time.perf_counter() - due) * 1000)
        if status >= 300:
            errors += 1

    started = time.perf_counter()
    tasks = []
    for i in range(total):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait().close()
    return Result(f"creations at {rate:.0f}/s", len(latencies), errors, elapsed, latencies)


async def prepare_submitted(base: str, n: int, concurrency: int, first: int) -> list[str]:
    """N low-risk changes (staging), created and submitted: each needs one approval."""
    host, port = host_port(base)
    ids: list[str] = []
    counter = iter(range(n))

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            for i in counter:
                body = json.loads(change_body(first + i))
                body["environment"] = "staging"
                status, payload = await conn.request("POST", "/changes", REQUESTER, json.dumps(body).encode())
                assert status == 201, payload
                cid = json.loads(payload)["id"]
                status, payload = await conn.request("POST", f"/changes/{cid}/submit", REQUESTER)
                assert status == 200 and json.loads(payload)["state"] == "awaiting_approval", payload
                ids.append(cid)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


async def run(base: str, args: argparse.Namespace) -> list[Result]:
    results = []
    warm = [("POST", "/changes", REQUESTER, change_body(i)) for i in range(200)]
    await closed_loop("warm-up", base, args.concurrency, warm, 30)

    # first, on a quiet service: after the closed-loop runs the relay still has their backlog to publish
    latency = await open_loop(base, args.rate, args.rate_seconds, 20_000_000)

    creations = [("POST", "/changes", REQUESTER, change_body(1000 + i)) for i in range(args.max_requests)]
    results.append(await closed_loop("creations", base, args.concurrency, creations, args.seconds))

    n = args.approvals
    console.print(f"preparing {n} submitted changes for the approvals run …")
    ids = await prepare_submitted(base, n, args.concurrency, 10_000_000)
    body = json.dumps({"decision": "approve", "comment": "bench"}).encode()
    approvals = [("POST", f"/changes/{cid}/approvals", APPROVER, body) for cid in ids]
    results.append(await closed_loop("approvals", base, args.concurrency, approvals, args.seconds))

    results.append(latency)
    return results


def report(results: list[Result], args: argparse.Namespace) -> bool:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    table = Table(
        title=f"change-svc over HTTP: {args.workers} uvicorn workers, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, load average after the run {load} "
        "(service, PostgreSQL, broker and load generator share the machine)"
    )
    for column in (
        "measurement",
        "requests",
        "errors",
        "seconds",
        "rate /s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "target",
        "met",
    ):
        table.add_column(column, justify="right" if column not in ("measurement", "target") else "left")
    ok = True
    for r in results:
        if r.name == "creations":
            target, met = f"≥ {CREATE_TARGET:.0f}/s", r.rate >= CREATE_TARGET
        elif r.name == "approvals":
            target, met = f"≥ {APPROVE_TARGET:.0f}/s", r.rate >= APPROVE_TARGET
        else:
            target, met = f"p99 < {P99_TARGET_MS:.0f} ms", r.pct(99) < P99_TARGET_MS
        met = met and r.errors == 0
        ok = ok and met
        table.add_row(
            r.name,
            str(r.requests),
            str(r.errors),
            f"{r.seconds:.1f}",
            f"{r.rate:.0f}",
            f"{r.pct(50):.1f}",
            f"{r.pct(95):.1f}",
            f"{r.pct(99):.1f}",
            target,
            "[green]yes[/]" if met else "[red]no[/]",
        )
    console.print(table)
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few seconds per measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64, help="keep-alive connections (closed loop)")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each closed-loop measurement")
    parser.add_argument("--approvals", type=int, default=3000, help="changes prepared for the approvals run")
    parser.add_argument("--rate", type=float, default=200.0, help="creations per second for the latency run")
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.approvals, args.rate_seconds = 3.0, 600, 5.0
    args.max_requests = 1_000_000
    with (
        tempfile.TemporaryDirectory(prefix="greenzone-bench-change-") as tmp,
        started_stack(Path(tmp)) as (
            admin_url,
            bootstrap,
        ),
    ):
        database_url = asyncio.run(create_database(admin_url))
        with running_service(database_url, bootstrap, args.workers, Path(tmp) / "change-svc.log") as base:
            results = asyncio.run(run(base, args))
        ok = report(results, args)
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
