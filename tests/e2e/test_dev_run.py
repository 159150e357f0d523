"""`make run`'s command on a fresh state directory: four ready services, and nothing left after SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from greenzone_common import topology
from greenzone_common.testing.helpers import bearer

from .conftest import free_offset

pytestmark = pytest.mark.integration


def test_dev_run_brings_four_ready_services_and_sigterm_leaves_no_process(tmp_path: Path) -> None:
    offset = free_offset()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENZONE_")}
    greenzone = str(Path(sys.executable).parent / "greenzone")
    started = time.monotonic()
    proc = subprocess.Popen(
        [greenzone, "dev", "run", "--state-dir", str(tmp_path / "state"), "--port-offset", str(offset)],
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Greenzone is ready" in line or proc.poll() is not None:
                break
        ready_after = time.monotonic() - started
        output = "".join(lines)
        assert "Greenzone is ready" in output, output
        assert ready_after < 60, f"ready after {ready_after:.1f}s"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 6, "postgres, the broker and four services"

        ports = {name: info.port + offset for name, info in topology.SERVICES.items()}
        with httpx.Client(timeout=5) as client:
            for name, port in ports.items():
                ready = client.get(f"http://127.0.0.1:{port}/readyz")
                assert ready.status_code == 200, (name, ready.text)
                assert ready.json()["checks"] == {"database": True, "broker": True}
            created = client.post(
                f"http://127.0.0.1:{ports['change-svc']}/changes",
                json={"title": "Smoke", "type": "normal", "service": "api", "environment": "staging"},
                headers=bearer("alice", "requester"),
            )
            assert created.status_code == 201, created.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"orphans after SIGTERM: {[c.cmdline()[:3] for c in left]}"
