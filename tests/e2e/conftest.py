"""The whole platform as real processes, started the way ``make run`` starts it (``greenzone dev run``)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from greenzone_common import topology


@dataclass
class Platform:
    proc: subprocess.Popen[str]
    offset: int
    state_dir: Path
    output: list[str]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{topology.service(service).port + self.offset}"

    def cli_env(self, token: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GREENZONE_")}
        for name in topology.SERVICES:
            env[f"GREENZONE_{name.removesuffix('-svc').upper()}_URL"] = self.url(name)
        if token:
            env["GREENZONE_TOKEN"] = token
        return env

    def log(self, service: str) -> str:
        path = self.state_dir / "logs" / f"{service}.log"
        return path.read_text() if path.exists() else ""


def free_offset() -> int:
    """A port offset whose four service ports are free and below the ephemeral range (32768+), so that no client
    socket of another process can take one between the check and the bind."""
    for _ in range(200):
        offset = random.randrange(2000, 24000)
        ports = [info.port + offset for info in topology.SERVICES.values()]
        if all(_bindable(p) for p in ports):
            return offset
    raise RuntimeError("no free ports for the platform")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def start_platform(state_dir: Path, extra_env: dict[str, str] | None = None) -> Platform:
    offset = free_offset()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENZONE_")}
    env.update({"COLUMNS": "200", **(extra_env or {})})
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "greenzone"),
            "dev",
            "run",
            "--state-dir",
            str(state_dir),
            "--port-offset",
            str(offset),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        output.append(line)
        if "Greenzone is ready" in line:
            return Platform(proc, offset, state_dir, output)
    proc.wait(30)
    raise AssertionError("the platform did not start:\n" + "".join(output))


def stop_platform(platform: Platform) -> None:
    platform.proc.send_signal(signal.SIGTERM)
    try:
        platform.proc.wait(60)
    except subprocess.TimeoutExpired:
        platform.proc.kill()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("platform"))
    try:
        yield running
    finally:
        stop_platform(running)
