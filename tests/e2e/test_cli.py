"""The ``greenzone`` CLI against the running platform, as a pipeline step and as people use it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from greenzone_common.testing.helpers import token

from .conftest import Platform

pytestmark = pytest.mark.integration

GREENZONE = str(Path(sys.executable).parent / "greenzone")


def run(platform: Platform, tok: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GREENZONE, *args], env=platform.cli_env(tok), capture_output=True, text=True, timeout=60, check=False
    )


def test_gate_check_exit_codes_and_the_change_commands(platform: Platform, tmp_path: Path) -> None:
    service, version = f"cli-{uuid.uuid4().hex[:6]}", "5.0.0"
    ci = token("ci-bot", "pipeline")

    allowed = run(platform, ci, "gate", "check", "--service", service, "--env", "staging", "--version", version)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr  # staging is not protected: allowed
    assert "ALLOW" in allowed.stdout

    denied = run(platform, ci, "gate", "check", "--service", service, "--env", "production", "--version", version)
    assert denied.returncode == 1, denied.stdout + denied.stderr
    assert "DENY" in denied.stdout and "NO_APPROVED_CHANGE" in denied.stdout

    requester = token("alice", "requester")
    created = run(
        platform,
        requester,
        "changes",
        "create",
        "--title",
        "CLI change",
        "--service",
        service,
        "--environment",
        "staging",
        "--version",
        version,
        "--json",
    )
    assert created.returncode == 0, created.stderr
    change = json.loads(created.stdout)
    assert change["state"] == "draft" and change["number"].startswith("CHG-")
    submitted = run(platform, requester, "changes", "submit", change["id"], "--json")
    assert json.loads(submitted.stdout)["state"] in ("awaiting_approval", "approved")

    own = run(platform, token("alice", "approver"), "changes", "approve", change["id"])
    assert own.returncode == 2 and "403" in own.stderr, "segregation of duties, reported as an error"

    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuite name="s" tests="1" failures="0"><testcase name="a" classname="t"/></testsuite>')
    uploaded = run(platform, ci, "evidence", "junit", str(junit), "--service", service, "--version", version)
    assert uploaded.returncode == 0, uploaded.stderr

    listed = run(platform, requester, "changes", "list", "--service", service, "--json")
    ids = {c["id"] for c in json.loads(listed.stdout)}
    drafted = json.loads(
        run(
            platform, ci, "gate", "check", "--service", service, "--env", "production", "--version", version, "--json"
        ).stdout
    )["change_id"]
    assert ids == {change["id"], drafted}, "the CLI's change and the one the gate drafted"


def test_cli_errors_are_clear_and_exit_2(platform: Platform) -> None:
    missing = run(platform, token("alice", "requester"), "changes", "show", str(uuid.uuid4()))
    assert missing.returncode == 2 and "404" in missing.stderr
    unauthorised = run(platform, "not-a-token", "changes", "list")
    assert unauthorised.returncode == 2 and "401" in unauthorised.stderr
