"""greenzone_common.serve: workers with sockets of their own share the connections, come back when they die, and
all stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from greenzone_common import devstack

APP = """
import os
from fastapi import FastAPI

app = FastAPI()


@app.get("/pid")
async def pid() -> int:
    return os.getpid()
"""


def pids_answering(port: int, connections: int = 24) -> set[int]:
    """The workers that answer ``connections`` fresh keep-alive connections (each its own client)."""
    seen = set()
    for _ in range(connections):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            seen.add(client.get("/pid").json())
    return seen


def wait_until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("condition not met in time")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    (tmp_path / "pidapp.py").write_text(APP)
    port = devstack.free_port()
    cmd = [sys.executable, "-m", "greenzone_common.serve", "pidapp:app", "--app-dir", str(tmp_path)]
    cmd += ["--port", str(port), "--workers", "2", "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        wait_until(lambda: len(pids_answering(port, 4)) >= 1)
        yield proc, port
    finally:
        devstack.stop_process(proc)


def test_each_worker_takes_a_share_of_new_connections(served: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = served
    workers = pids_answering(port)
    assert len(workers) == 2
    assert proc.pid not in workers  # the supervisor only supervises


def test_a_worker_that_dies_is_started_again(served: tuple[subprocess.Popen[bytes], int]) -> None:
    _, port = served
    first = pids_answering(port)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(pids_answering(port)) == 2 and victim not in pids_answering(port))


def test_sigterm_stops_every_worker(served: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = served
    workers = pids_answering(port)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=40) == 0
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
