"""The whole platform as real processes, started the way ``make run`` starts it (``greenzone dev run``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from greenzone_common import topology
from greenzone_common.devstack import free_port


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


def start_platform(state_dir: Path, extra_env: dict[str, str] | None = None) -> Platform:
    offset = 20000 + free_port() % 20000
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
