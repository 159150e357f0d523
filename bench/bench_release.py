"""Gate decisions: POST /gates/evaluate against release-svc running as it runs in production (uvicorn, 2 workers).

    .venv/bin/python bench/bench_release.py [--seconds S] [--connections C] [--rate R] [--quick]

Starts an embedded PostgreSQL (fsync on) and the Tansu broker, unless ``GREENZONE_DATABASE_URL`` /
``GREENZONE_KAFKA_BOOTSTRAP`` point at existing ones, migrates a fresh database, seeds the projections the gate reads
(approved changes, staging deployments, test and scan evidence for most services, a window, freezes), starts
``uvicorn release_svc.main:create_app --workers 2``, then measures:

1. throughput: C keep-alive connections send requests back to back for S seconds → decisions/s;
2. latency at a fixed rate: an open-loop schedule of R requests/s (default 500) for S seconds; each latency is
   measured from the request's scheduled time, so a stall counts against every request queued behind it.

Every decision is the whole thing: JWT check, the projections snapshot (one query), the rules, the decision row and
its ``gate.evaluated`` outbox row committed (the relay publishes them meanwhile). The requests mix production (all
rules; most allowed, some denied with an auto-drafted change) and staging (freeze rule only).
Targets (issue 5): ≥ 2,000 decisions/s and p99 < 20 ms at 500/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

from greenzone_common.auth import issue_dev_token
from greenzone_common.devstack import EmbeddedPostgres, Tansu, free_port, start_service, stop_process
from greenzone_common.migrations import migrate
from greenzone_common.settings import DEV_JWT_SECRET
from release_svc.config import Settings
from release_svc.main import SPEC

THROUGHPUT_TARGET = 2_000  # decisions/s
P99_TARGET_MS = 20.0
SERVICES = [f"svc-{i:02d}" for i in range(40)]
UNGATED = SERVICES[-5:]  # no change, failing evidence: denied (and a change drafted once)

console = Console(width=None if sys.stdout.isatty() else 150)


# --------------------------------------------------------------------------------------------------- infrastructure


@dataclass
class Stack:
    database_url: str
    bootstrap: str


@contextmanager
def started_stack(tmp: Path) -> Iterator[Stack]:
    postgres: EmbeddedPostgres | None = None
    tansu: Tansu | None = None
    try:
        admin_url = os.environ.get("GREENZONE_DATABASE_URL", "")
        if not admin_url:
            postgres = EmbeddedPostgres(tmp / "pg" / "data", fast=False).start()
            admin_url = postgres.url
        bootstrap = os.environ.get("GREENZONE_KAFKA_BOOTSTRAP", "")
        if not bootstrap:
            tansu = Tansu(log_path=tmp / "tansu.log").start()
            bootstrap = tansu.bootstrap
        database = f"greenzone_bench_release_{uuid.uuid4().hex[:8]}"
        asyncio.run(_create_database(admin_url, database))
        base, _, _ = admin_url.partition("?")[0].rpartition("/")
        yield Stack(database_url=f"{base}/{database}", bootstrap=bootstrap)
    finally:
        try:
            if tansu is not None:
                tansu.stop()
        finally:
            if postgres is not None:
                postgres.stop()


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def seed(database_url: str) -> None:
    """The projections as change-svc's and pipeline-svc's events would have left them."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(database_url)
    try:
        gated = [s for s in SERVICES if s not in UNGATED]
        await conn.executemany(
            "INSERT INTO release.changes (change_id, number, type, service, environment, state, state_rank, version,"
            " auto_created, updated_at) VALUES ($1, $2, 'normal', $3, 'production', 'approved', 2, '1.0.0', false, $4)",
            [(str(uuid.uuid4()), f"CHG-{i:06d}", s, now) for i, s in enumerate(gated)],
        )
        await conn.executemany(
            "INSERT INTO release.deployments (id, service, environment, version, commit, outcome, at, source,"
            " source_id) VALUES ($1, $2, 'staging', '1.0.0', NULL, 'success', $3, 'github', $1)",
            [(str(uuid.uuid4()), s, now) for s in SERVICES],
        )
        await conn.executemany(
            "INSERT INTO release.test_reports (ce_id, service, version, suite, outcome, passed, failed, skipped,"
            " reported_at) VALUES ($1, $2, '1.0.0', $3, $4, 10, $5, 0, $6)",
            [
                (str(uuid.uuid4()), s, suite, "failure" if s in UNGATED else "success", int(s in UNGATED), now)
                for s in SERVICES
                for suite in ("unit", "integration")
            ],
        )
        await conn.executemany(
            "INSERT INTO release.scan_reports (ce_id, service, version, tool, critical, high, medium, low,"
            " reported_at) VALUES ($1, $2, '1.0.0', 'trivy', 0, 0, 3, 5, $3)",
            [(str(uuid.uuid4()), s, now) for s in SERVICES],
        )
        # open all week (an overnight window from 00:00 to 00:00), so allowed requests stay allowed
        await conn.execute(
            'INSERT INTO release.windows (id, environment, days, start, "end", timezone) VALUES'
            " ($1, 'production', $2::jsonb, '00:00', '00:00', 'Europe/London')",
            str(uuid.uuid4()),
            json.dumps(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        )
        await conn.executemany(
            'INSERT INTO release.freezes (id, name, start, "end", environments, services, reason) VALUES'
            " ($1, $2, $3, $4, '[\"production\", \"staging\"]'::jsonb, $5::jsonb, 'bench')",
            [
                (str(uuid.uuid4()), "Other team", now - timedelta(days=1), now + timedelta(days=1), '["elsewhere"]'),
                (str(uuid.uuid4()), "Next month", now + timedelta(days=30), now + timedelta(days=31), "[]"),
            ],
        )
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------------- HTTP client


class Connection:
    """A bare HTTP/1.1 keep-alive connection: the load generator must cost far less than the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length)
        return status, body

    def close(self) -> None:
        self.writer.close()


def requests(port: int, n: int, seed: int = 7) -> list[bytes]:
    token = issue_dev_token(DEV_JWT_SECRET, "bench-pipeline", ["pipeline"])
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        environment = "production" if rnd.random() < 0.8 else "staging"
        body = json.dumps(
            {"service": rnd.choice(SERVICES), "environment": environment, "version": "1.0.0", "commit": None}
        ).encode()
        out.append(
            b"POST /gates/evaluate HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (port, token.encode(), len(body), body)
        )
    return out


@dataclass
class Outcome:
    name: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def record(self, status: int, body: bytes, latency_ms: float) -> None:
        self.latencies_ms.append(latency_ms)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            decision = json.loads(body)["decision"]
            self.decisions[decision] = self.decisions.get(decision, 0) + 1


async def closed_loop(port: int, connections: int, seconds: float) -> Outcome:
    pool = requests(port, 20_000)
    result = Outcome("throughput", seconds)
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()

    async def worker(i: int) -> None:
        conn = await Connection.open(port)
        k = i
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                status, body = await conn.request(pool[k % len(pool)])
                result.record(status, body, (time.perf_counter() - t0) * 1000)
                k += connections
        finally:
            conn.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


async def open_loop(port: int, rate: float, seconds: float) -> Outcome:
    """Requests fired on a fixed schedule; latency counted from the scheduled time (no coordinated omission)."""
    n = int(rate * seconds)
    pool = requests(port, n, seed=11)
    result = Outcome(f"latency at {rate:,.0f}/s", seconds)
    # at most 64 connections: when the server falls behind, requests queue here (and their latency shows it)
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(64):
        idle.put_nowait(await Connection.open(port))
    start = time.perf_counter() + 0.2

    async def fire(i: int) -> None:
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await idle.get()
        try:
            status, body = await conn.request(pool[i])
        finally:
            idle.put_nowait(conn)
        result.record(status, body, (time.perf_counter() - scheduled) * 1000)

    await asyncio.gather(*(fire(i) for i in range(n)))
    result.seconds = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return result


# --------------------------------------------------------------------------------------------------- main


def wait_ready(port: int, proc: Any, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"release-svc exited with {proc.returncode}")
            try:
                if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise TimeoutError("release-svc not ready")


async def counts(database_url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM release.gate_decisions) AS decisions,"
            " (SELECT count(*) FROM release.outbox WHERE type = 'dev.greenzone.gate.evaluated.v1') AS events"
        )
        assert row is not None
        return int(row["decisions"]), int(row["events"])
    finally:
        await conn.close()


def report(results: Sequence[Outcome], facts: dict[str, str], rate: float) -> bool:
    table = Table(title="release-svc gate decisions (uvicorn, 2 workers)", title_justify="left")
    for col in (
        "measurement",
        "requests",
        "seconds",
        "decisions/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "statuses",
        "allow/deny",
        "target",
    ):
        table.add_column(col, justify="left" if col in ("measurement", "statuses", "allow/deny", "target") else "right")
    ok = True
    for r in results:
        if r.name == "throughput":
            passed = r.rate >= THROUGHPUT_TARGET
            target = f"≥ {THROUGHPUT_TARGET:,}/s " + ("[green]PASS[/]" if passed else "[red]FAIL[/]")
        else:
            passed = r.pct(0.99) < P99_TARGET_MS and r.rate >= rate * 0.95
            target = f"p99 < {P99_TARGET_MS:.0f} ms " + ("[green]PASS[/]" if passed else "[red]FAIL[/]")
        ok = ok and passed
        table.add_row(
            r.name,
            f"{r.count:,}",
            f"{r.seconds:.1f}",
            f"{r.rate:,.0f}",
            f"{r.pct(0.5):.1f}",
            f"{r.pct(0.9):.1f}",
            f"{r.pct(0.99):.1f}",
            f"{max(r.latencies_ms, default=0):.1f}",
            ", ".join(f"{k}: {v:,}" for k, v in sorted(r.statuses.items())),
            f"{r.decisions.get('allow', 0):,} / {r.decisions.get('deny', 0):,}",
            target,
        )
    console.print(table)
    machine = Table(title="Setup", title_justify="left", show_header=False)
    machine.add_column("fact")
    machine.add_column("value")
    for k, v in facts.items():
        machine.add_row(k, v)
    console.print(machine)
    return ok


def run(args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="greenzone-bench-release-") as tmp, started_stack(Path(tmp)) as stack:
        settings = Settings(env="development", database_url=stack.database_url, kafka_bootstrap=stack.bootstrap)
        asyncio.run(migrate(settings, SPEC.migrations, SPEC.schema))
        asyncio.run(seed(stack.database_url))
        port = free_port()
        env = {
            **os.environ,
            "GREENZONE_ENV": "development",
            "GREENZONE_DATABASE_URL": stack.database_url,
            "GREENZONE_KAFKA_BOOTSTRAP": stack.bootstrap,
            "GREENZONE_MIGRATE_ON_START": "false",
            "GREENZONE_LOG_LEVEL": "WARNING",
        }
        log = Path(tmp) / "release-svc.log"
        proc = start_service("release_svc.main", port, env, log, extra=["--workers", "2"])
        load_before = os.getloadavg()[0]
        try:
            wait_ready(port, proc)
            console.print(f"[bold]release-svc[/] on :{port} (2 workers); warming up …")
            asyncio.run(closed_loop(port, 8, 1.0 if args.quick else 3.0))
            console.print(f"[bold]throughput[/]: {args.connections} connections for {args.seconds:.0f}s …")
            throughput = asyncio.run(closed_loop(port, args.connections, args.seconds))
            console.print(f"  {throughput.rate:,.0f} decisions/s")
            if throughput.rate < args.rate:
                console.print(f"  [yellow]below {args.rate:,.0f}/s: the fixed-rate run will measure queueing[/]")
            console.print(f"[bold]latency[/]: {args.rate:,.0f} requests/s for {args.seconds:.0f}s …")
            latency = asyncio.run(open_loop(port, args.rate, args.seconds))
            console.print(f"  p99 {latency.pct(0.99):.1f} ms")
            decisions, events = asyncio.run(counts(stack.database_url))
        finally:
            stop_process(proc)
        facts = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "database": "embedded PostgreSQL (fsync on)" if "GREENZONE_DATABASE_URL" not in os.environ else "external",
            "decisions recorded / gate.evaluated outbox rows": f"{decisions:,} / {events:,}",
            "request mix": "80% production (all rules), 20% staging; 5 of 40 services denied",
            "median of throughput latencies": f"{statistics.median(throughput.latencies_ms):.1f} ms",
            # the service, PostgreSQL, the broker and this load generator share the CPUs; anything else running
            # (other test suites, benchmarks) shows here and in every figure above
            "load average (1 min) before / after": f"{load_before:.1f} / {os.getloadavg()[0]:.1f}",
        }
        return report([throughput, latency], facts, args.rate)


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each measurement (default 15)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections for throughput")
    parser.add_argument("--rate", type=float, default=500.0, help="fixed request rate for the latency run")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 s measurements")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 3.0
    signal.signal(signal.SIGTERM, _terminate)
    ok = run(args)
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
