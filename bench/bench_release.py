"""Gate decisions: POST /gates/evaluate against release-svc running as it runs in production (uvicorn, 2 workers).

    .venv/bin/python bench/bench_release.py [--seconds S] [--connections C] [--rate R] [--quick]

Starts an embedded PostgreSQL (fsync on) and the Tansu broker, unless ``GREENZONE_DATABASE_URL`` /
``GREENZONE_KAFKA_BOOTSTRAP`` point at existing ones, migrates a fresh database, seeds the projections the gate reads
(approved changes, staging deployments, test and scan evidence for most services, a window, freezes), starts
release-svc with 2 uvicorn workers (``greenzone_common.serve``, as ``make run`` starts it), then measures:

1. throughput: C keep-alive connections send requests back to back for S seconds → decisions/s;
2. latency at a fixed rate: an open-loop schedule of R requests/s (default 500) for S seconds; each latency is
   measured from the request's scheduled time, so a stall counts against every request queued behind it.

Every decision is the whole thing: JWT check, the projections snapshot, the rules, the decision row and its
``gate.evaluated`` outbox row committed (the relay publishes them meanwhile); concurrent requests' snapshots and
records go to PostgreSQL one statement per batch (``GateBatches``), as in production. The requests mix production (all
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
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from benchkit import (
    Result,
    closed_loop,
    create_database,
    echo_rate,
    load_average,
    loop_speed,
    open_loop,
    request_bytes,
    running,
    started_stack,
)
from rich.console import Console
from rich.table import Table

from greenzone_common.auth import issue_dev_token
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


def requests(n: int, seed: int = 7) -> list[bytes]:
    token = issue_dev_token(DEV_JWT_SECRET, "bench-pipeline", ["pipeline"])
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        environment = "production" if rnd.random() < 0.8 else "staging"
        body = json.dumps(
            {"service": rnd.choice(SERVICES), "environment": environment, "version": "1.0.0", "commit": None}
        ).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        out.append(request_bytes("POST", "/gates/evaluate", headers, body))
    return out


class Decisions(dict[str, int]):
    """allow/deny counts of the answers (each body read, so a wrong answer cannot pass for a fast one)."""

    def __call__(self, status: int, body: bytes) -> None:
        if status == 200:
            decision = json.loads(body)["decision"]
            self[decision] = self.get(decision, 0) + 1


# --------------------------------------------------------------------------------------------------- main


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


def report(results: Sequence[Result], facts: dict[str, str], rate: float) -> bool:
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
        "target",
    ):
        table.add_column(col, justify="left" if col in ("measurement", "statuses", "target") else "right")
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
    load_before, speed_before = load_average(), loop_speed()
    with tempfile.TemporaryDirectory(prefix="greenzone-bench-release-") as tmp, started_stack(Path(tmp)) as stack:
        admin_url, bootstrap = stack
        database_url = asyncio.run(create_database(admin_url, "release"))
        settings = Settings(env="development", database_url=database_url, kafka_bootstrap=bootstrap)
        asyncio.run(migrate(settings, SPEC.migrations, SPEC.schema))
        asyncio.run(seed(database_url))
        env = {
            **os.environ,
            "GREENZONE_ENV": "development",
            "GREENZONE_DATABASE_URL": database_url,
            "GREENZONE_KAFKA_BOOTSTRAP": bootstrap,
            "GREENZONE_MIGRATE_ON_START": "false",
            "GREENZONE_LOG_LEVEL": "WARNING",
        }
        pool = requests(20_000)
        echo = echo_rate(env, Path(tmp) / "echo.log", lambda i: pool[i % len(pool)], args.connections, args.seconds)
        with running("release_svc.main", env, Path(tmp) / "release-svc.log") as address:
            console.print("[bold]release-svc[/] (2 workers); warming up …")
            asyncio.run(closed_loop("warm-up", address, lambda i: pool[i % len(pool)], 8, 1.0 if args.quick else 3.0))
            console.print(f"[bold]throughput[/]: {args.connections} connections for {args.seconds:.0f}s …")
            decided = Decisions()
            throughput = asyncio.run(
                closed_loop(
                    "throughput", address, lambda i: pool[i % len(pool)], args.connections, args.seconds, check=decided
                )
            )
            console.print(f"  {throughput.rate:,.0f} decisions/s (bare FastAPI echo: {echo:,.0f}/s)")
            if throughput.rate < args.rate:
                console.print(f"  [yellow]below {args.rate:,.0f}/s: the fixed-rate run will measure queueing[/]")
            console.print(f"[bold]latency[/]: {args.rate:,.0f} requests/s for {args.seconds:.0f}s …")
            scheduled = requests(int(args.rate * args.seconds), seed=11)
            latency = asyncio.run(open_loop(f"latency at {args.rate:,.0f}/s", address, scheduled, args.rate))
            console.print(f"  p99 {latency.pct(0.99):.1f} ms")
        decisions, events = asyncio.run(counts(database_url))
    facts = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "database": "embedded PostgreSQL (fsync on)" if "GREENZONE_DATABASE_URL" not in os.environ else "external",
        "bare FastAPI echo, same client and connections": f"{echo:,.0f} requests/s "
        f"(gate ÷ echo = {throughput.rate / echo:.2f})",
        "decisions recorded / gate.evaluated outbox rows": f"{decisions:,} / {events:,}",
        "answers in the throughput run, allow / deny": f"{decided.get('allow', 0):,} / {decided.get('deny', 0):,}",
        "request mix": "80% production (all rules), 20% staging; 5 of 40 services denied",
        "median of throughput latencies": f"{statistics.median(throughput.latencies_ms or [0]):.1f} ms",
        # the service, PostgreSQL, the broker and this load generator share the CPUs; anything else running
        # (other test suites, benchmarks) shows here and in every figure above
        "load average (1 min) before / after": f"{load_before:.1f} / {load_average():.1f}",
        "an empty Python loop before / after (CPU speed)": f"{speed_before:.0f} / {loop_speed():.0f} ns an iteration",
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
