"""What every HTTP benchmark here needs: the stack, a fresh database, a service under uvicorn, a load generator that
costs far less than the server, and the bare-FastAPI baseline measured in the same run.

The load generator is a minimal HTTP/1.1 keep-alive client on asyncio streams: requests are prepared as bytes
beforehand, so the hot loop is a write and a parse of the status line and ``Content-Length``. On this 2-core machine
httpx in the same role was the bottleneck (a bare echo app measured 457 requests/s through it).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from greenzone_common import devstack
from greenzone_common.devstack import EmbeddedPostgres, Tansu
from greenzone_common.relay import planned_as_relay

BENCH = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------------- the stack


@contextlib.contextmanager
def started_stack(tmp: Path) -> Iterator[tuple[str, str]]:
    """(admin database URL, bootstrap): the environment's, or an embedded PostgreSQL (fsync on) and Tansu broker,
    stopped on the way out."""
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
        yield admin_url, bootstrap
    finally:
        try:
            if tansu is not None:
                tansu.stop()
        finally:
            if postgres is not None:
                postgres.stop()


async def create_database(admin_url: str, prefix: str) -> str:
    """A fresh database next to ``admin_url``'s; its URL."""
    name = f"greenzone_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_url.partition("?")[0].rpartition("/")
    return f"{base}/{name}"


@contextlib.contextmanager
def running(
    module: str, env: dict[str, str], log: Path, *, workers: int = 2, ready: str = "/readyz", factory: bool = True
) -> Iterator[tuple[str, int]]:
    """``module``'s app under uvicorn with ``workers`` workers, as ``make run`` starts a service; (host, port) once
    ``ready`` answers 200."""
    port = devstack.free_port()
    if factory:
        proc = devstack.start_service(module, port, env, log, extra=["--workers", str(workers)])
    else:
        cmd = [sys.executable, "-m", "greenzone_common.serve", module, "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--workers", str(workers), "--no-access-log", "--log-level", "warning", "--app-dir", str(BENCH)]
        proc = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        asyncio.run(_wait_ready("127.0.0.1", port, ready, proc))
        yield "127.0.0.1", port
    finally:
        devstack.stop_process(proc)


async def _wait_ready(host: str, port: int, path: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
            conn = await Connection.open(host, port)
            try:
                status, _ = await conn.send(request)
            finally:
                conn.close()
            if status == 200:
                return
        await asyncio.sleep(0.3)
    raise TimeoutError(f"http://{host}:{port}{path} not ready")


# ---------------------------------------------------------------------------------------------------- the client


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"", host: str = "bench") -> bytes:
    """One HTTP/1.1 request, ready to write."""
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive connection; its requests are sequential."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Write one prepared request; (status, body)."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, (await self.reader.readexactly(length) if length else b"")

    def close(self) -> None:
        self.writer.close()


async def drained(database_url: str, schema: str, timeout: float = 300.0) -> float:
    """Wait until the relay has published every outbox row of ``schema``; the seconds it took. A measurement that
    follows a heavy one starts from a quiet service instead of beside the relay draining the other's backlog."""
    started = time.perf_counter()
    # planned as the relay plans: from statistics taken during the burst this poll was a scan of every published row
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(planned_as_relay(local=False))
        while time.perf_counter() - started < timeout:
            if not await conn.fetchval(f'SELECT EXISTS (SELECT FROM "{schema}".outbox WHERE published_at IS NULL)'):
                return time.perf_counter() - started
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise TimeoutError(f"{schema}.outbox still had unpublished rows after {timeout:.0f} s")


Statement = tuple[str, Sequence[Any]]


@contextlib.contextmanager
def captured_statements(engine: AsyncEngine) -> Iterator[list[Statement]]:
    """Every statement ``engine`` sends while the block runs, as asyncpg receives it (SQL with ``$n`` and its
    parameters): the input of :func:`replayed_rate`."""
    seen: list[Statement] = []

    def capture(_conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((sql, tuple(parameters or ())))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)


async def replayed_rate(database_url: str, transactions: Sequence[Sequence[Statement]], connections: int) -> float:
    """Transactions/s of ``transactions`` replayed with raw asyncpg on ``connections`` connections (each
    transaction's statements in order, prepared once per connection): the database's share of a workload, with none
    of the service's Python work in the loop."""
    pending = list(reversed(transactions))
    conns = [await asyncpg.connect(database_url) for _ in range(connections)]

    async def worker(conn: asyncpg.Connection) -> None:
        while pending:
            statements = pending.pop()
            async with conn.transaction():
                for sql, parameters in statements:
                    await conn.fetch(sql, *parameters)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        return len(transactions) / (time.perf_counter() - started)
    finally:
        for c in conns:
            await c.close()


def quiet_collector() -> None:
    """The load generator's own full garbage collections would stall it (50 ms seen) and count as server latency:
    what exists before a run is frozen, as the services freeze what their startup built."""
    gc.collect()
    gc.freeze()


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 300)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """The q-quantile (0 to 1) of the latencies, nearest rank."""
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def record(self, status: int, latency_ms: float) -> None:
        self.latencies_ms.append(latency_ms)
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def closed_loop(
    name: str,
    address: tuple[str, int],
    requests: Callable[[int], bytes],
    connections: int,
    seconds: float,
    *,
    limit: int | None = None,
    check: Callable[[int, bytes], None] | None = None,
) -> Result:
    """``connections`` connections send ``requests(i)`` back to back for ``seconds`` (or until ``limit`` requests):
    the rate the server sustains."""
    result = Result(name)
    counter = iter(range(limit) if limit is not None else range(sys.maxsize))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = await Connection.open(*address)
        try:
            for i in counter:
                if time.perf_counter() >= deadline:
                    return
                raw = requests(i)
                t0 = time.perf_counter()
                status, body = await conn.send(raw)
                result.record(status, (time.perf_counter() - t0) * 1000)
                if check is not None:
                    check(status, body)
        finally:
            conn.close()

    quiet_collector()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


async def open_loop(
    name: str,
    address: tuple[str, int],
    requests: Sequence[bytes],
    rate: float,
    *,
    connections: int = 64,
) -> Result:
    """``requests`` fired on a fixed schedule of ``rate``/s; each latency counts from when the request was due, so a
    stalled server cannot hide the queue behind it (no coordinated omission). At most ``connections`` are in flight:
    beyond that, requests wait here, and their latency shows it."""
    result = Result(name)
    quiet_collector()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(*address))
    start = time.perf_counter() + 0.2

    async def fire(i: int) -> None:
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await idle.get()
        try:
            status, _ = await conn.send(requests[i])
        finally:
            idle.put_nowait(conn)
        result.record(status, (time.perf_counter() - due) * 1000)

    await asyncio.gather(*(fire(i) for i in range(len(requests))))
    result.seconds = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return result


# ---------------------------------------------------------------------------------------------------- the baseline

echo_app = FastAPI()


@echo_app.post("/echo")
async def echo(request: Request) -> Response:
    """The baseline: read the body and answer, nothing else — what FastAPI under uvicorn costs by itself."""
    body = await request.body()
    return Response(content=b'{"bytes": %d}' % len(body), media_type="application/json", status_code=200)


def echo_rate(
    env: dict[str, str], log: Path, requests: Callable[[int], bytes], connections: int, seconds: float
) -> float:
    """Requests/s of the bare echo app (2 workers) with the same bodies, client and concurrency."""

    def to_echo(i: int) -> bytes:
        raw = requests(i)
        first, _, rest = raw.partition(b"\r\n")
        method = first.split(b" ", 1)[0]
        return method.replace(b"GET", b"POST") + b" /echo HTTP/1.1\r\n" + rest

    with running("benchkit:echo_app", env, log, ready="/docs", factory=False) as address:
        asyncio.run(closed_loop("warm-up", address, to_echo, connections, 1.0))
        return asyncio.run(closed_loop("echo", address, to_echo, connections, seconds)).rate


# ------------------------------------------------------------------------------------------- where the CPU goes

#: process groups of a run on this machine, by what their command line holds; the load generator is this process
_GROUPS = (("PostgreSQL", "postgres"), ("broker", "tansu"))


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid → (parent pid, command line, CPU seconds it and its reaped children used), for every process."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[int, str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        # after the command name: state, ppid, …, utime (14th field), stime, cutime, cstime
        found[int(entry)] = (int(fields[1]), cmdline, sum(int(x) for x in fields[11:15]) / tick)
    return found


def cpu_by_group(service: str, label: str = "") -> dict[str, float]:
    """CPU seconds used so far by each group of processes: ``service`` (the processes whose command line names it,
    and their descendants: a supervisor and its workers; the group is called ``label`` when one is given),
    PostgreSQL, the broker, the load generator (this process) and everything else. Take one reading before and one
    after a phase; :func:`cpu_used` gives the difference. Reaped children count in their parent, so a backend that
    exits during the phase is not lost."""
    processes = _processes()
    roots = {pid for pid, (_, cmdline, _) in processes.items() if service in cmdline}

    def group(pid: int) -> str:
        seen = 0
        at = pid
        while at > 1 and seen < 64:
            if at in roots:
                return label or service
            at = processes.get(at, (0, "", 0.0))[0]
            seen += 1
        if pid == os.getpid():
            return "load generator"
        cmdline = processes[pid][1]
        return next((name for name, mark in _GROUPS if mark in cmdline), "other")

    totals: dict[str, float] = {}
    for pid, (_, _, seconds) in processes.items():
        name = group(pid)
        totals[name] = totals.get(name, 0.0) + seconds
    return totals


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What each group used between two :func:`cpu_by_group` readings (a group that ended in between counts 0)."""
    return {name: max(0.0, after.get(name, 0.0) - before.get(name, 0.0)) for name in after}


def load_average() -> float:
    return os.getloadavg()[0]


def loop_speed(samples: int = 15) -> float:
    """Nanoseconds one iteration of an empty Python loop takes here, median of ``samples`` short runs: how fast this
    machine's CPUs are at the moment, to set figures from different machines or hours side by side (on a shared
    2-core VM it was seen to swing between 30 and 64 ns while idle)."""
    runs = []
    for _ in range(samples):
        started = time.perf_counter()
        for _ in range(200_000):
            pass
        runs.append((time.perf_counter() - started) / 200_000 * 1e9)
        time.sleep(0.02)
    return sorted(runs)[len(runs) // 2]
