"""change-svc throughput and latency over HTTP, as deployed: uvicorn with 2 workers, PostgreSQL, the broker.

    .venv/bin/python bench/bench_change.py [--quick] [--workers 2] [--concurrency 64] [--seconds 15] [--rate 200]

Starts an embedded PostgreSQL (fsync on) and the Tansu broker unless ``GREENZONE_DATABASE_URL`` /
``GREENZONE_KAFKA_BOOTSTRAP`` point at existing ones, creates a fresh database, starts change-svc as ``make run``
does (``python -m greenzone_common.serve change_svc.main:create_app --factory --workers N``: uvicorn workers
each on a socket of its own; migrations, relay and consumers included), then
measures:

1. creations/s: ``POST /changes`` (risk from the projections, the change row, its audit entry and its outbox event
   in one transaction) from ``--concurrency`` keep-alive connections for ``--seconds``;
2. approvals/s: ``POST /changes/{id}/approvals`` on changes created and submitted beforehand (untimed), one
   approval each (a low-risk change: the approval decides it, so each call also stages approval.recorded,
   approved and a CDEvents ticket.updated);
3. latency at a fixed rate (measured first, on a quiet service): ``--rate`` creations per second, open loop (each
   request's latency counts from the moment it was due, so a stalled server cannot hide queueing), p50/p95/p99.

The load generator is benchkit's minimal HTTP/1.1 keep-alive client (no httpx in the hot loop), so that as much of
the machine as possible is left to the service; a bare FastAPI echo app is measured beside it with the same
client. It shares the machine with the service, PostgreSQL and
the broker: the figures are those of this machine, printed with its core count.
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
from collections.abc import Sequence
from pathlib import Path

from benchkit import (
    Connection,
    Result,
    closed_loop,
    create_database,
    echo_rate,
    loop_speed,
    open_loop,
    request_bytes,
    running,
    started_stack,
)
from rich.console import Console
from rich.table import Table

from greenzone_common.testing.helpers import token

CREATE_TARGET = 800.0  # /s
APPROVE_TARGET = 800.0  # /s
P99_TARGET_MS = 100.0  # at 200/s

console = Console(width=None if sys.stdout.isatty() else 150)


# --------------------------------------------------------------------------------------------------- infrastructure


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


async def prepare_submitted(address: tuple[str, int], n: int, concurrency: int, first: int) -> list[str]:
    """N low-risk changes (staging), created and submitted: each needs one approval."""
    ids: list[str] = []
    counter = iter(range(n))

    async def worker() -> None:
        conn = await Connection.open(*address)
        try:
            for i in counter:
                body = json.loads(change_body(first + i))
                body["environment"] = "staging"
                status, payload = await conn.send(
                    request_bytes("POST", "/changes", REQUESTER, json.dumps(body).encode())
                )
                assert status == 201, payload
                cid = json.loads(payload)["id"]
                status, payload = await conn.send(request_bytes("POST", f"/changes/{cid}/submit", REQUESTER))
                assert status == 200 and json.loads(payload)["state"] == "awaiting_approval", payload
                ids.append(cid)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


def creation(i: int) -> bytes:
    return request_bytes("POST", "/changes", REQUESTER, change_body(i))


async def run(address: tuple[str, int], args: argparse.Namespace) -> list[Result]:
    results = []
    await closed_loop("warm-up", address, creation, args.concurrency, 30, limit=200)

    # first, on a quiet service: after the closed-loop runs the relay still has their backlog to publish
    scheduled = [creation(20_000_000 + i) for i in range(int(args.rate * args.rate_seconds))]
    results.append(await open_loop(f"creations at {args.rate:.0f}/s", address, scheduled, args.rate))

    results.insert(
        0, await closed_loop("creations", address, lambda i: creation(1000 + i), args.concurrency, args.seconds)
    )

    n = args.approvals
    console.print(f"preparing {n} submitted changes for the approvals run …")
    ids = await prepare_submitted(address, n, args.concurrency, 10_000_000)
    body = json.dumps({"decision": "approve", "comment": "bench"}).encode()
    approvals = [request_bytes("POST", f"/changes/{cid}/approvals", APPROVER, body) for cid in ids]
    results.insert(
        1, await closed_loop("approvals", address, approvals.__getitem__, args.concurrency, args.seconds, limit=n)
    )
    return results


def report(results: list[Result], args: argparse.Namespace, echo: float) -> bool:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    table = Table(
        title=f"change-svc over HTTP: {args.workers} uvicorn workers, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, load average after the run {load}, "
        f"an empty Python loop {loop_speed():.0f} ns an iteration "
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
            target, met = f"p99 < {P99_TARGET_MS:.0f} ms", r.pct(0.99) < P99_TARGET_MS
        met = met and r.errors == 0
        ok = ok and met
        table.add_row(
            r.name,
            str(r.count),
            str(r.errors),
            f"{r.seconds:.1f}",
            f"{r.rate:.0f}",
            f"{r.pct(0.5):.1f}",
            f"{r.pct(0.95):.1f}",
            f"{r.pct(0.99):.1f}",
            target,
            "[green]yes[/]" if met else "[red]no[/]",
        )
    console.print(table)
    creations = next(r for r in results if r.name == "creations")
    console.print(
        f"bare FastAPI echo with the same client, bodies and connections: {echo:,.0f} requests/s "
        f"(creations ÷ echo = {creations.rate / echo:.2f})"
    )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few seconds per measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64, help="keep-alive connections (closed loop)")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each closed-loop measurement")
    parser.add_argument("--approvals", type=int, default=10_000, help="changes prepared for the approvals run")
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
        database_url = asyncio.run(create_database(admin_url, "change"))
        env = {
            **os.environ,
            "GREENZONE_DATABASE_URL": database_url,
            "GREENZONE_KAFKA_BOOTSTRAP": bootstrap,
            "GREENZONE_LOG_LEVEL": "WARNING",
            "GREENZONE_CONSUMER_GROUP_SUFFIX": f".bench{uuid.uuid4().hex[:6]}",
        }
        echo = echo_rate(env, Path(tmp) / "echo.log", creation, args.concurrency, args.seconds)
        with running("change_svc.main", env, Path(tmp) / "change-svc.log", workers=args.workers) as address:
            results = asyncio.run(run(address, args))
        ok = report(results, args, echo)
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
