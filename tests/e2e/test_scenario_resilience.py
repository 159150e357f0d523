"""Resilience of the whole: a service process stopped in the middle of a scenario and started again. The scenario
still completes, nothing is lost (every expected state arrives) and nothing is applied twice (the counts are
exact).

The platform is built as ``make run`` builds it (``DevStack``: embedded PostgreSQL, Tansu, migrations, the four
services as uvicorn processes) but without ``make run``'s supervisor, which stops everything when one service
exits. The broker keeps running: Tansu's memory engine keeps nothing across its own restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from greenzone_common import topology
from greenzone_common.devrun import DevStack

from .conftest import free_offset
from .test_scenarios import APPROVERS, REQUESTER, RM, VIEWER, Client, iso, unique, wait_for

pytestmark = pytest.mark.integration

GITHUB_SECRET = "e2e-resilience-github-secret-0123456789"


class RestartablePlatform:
    """The four services of a ``DevStack``, any of which a test may stop (SIGTERM, SIGKILL) and start again."""

    def __init__(self, stack: DevStack) -> None:
        self.stack = stack

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.stack.port(topology.service(service))}"

    def stop(self, service: str, sig: signal.Signals) -> None:
        self.stack.stop_service(service, sig)
        with pytest.raises(httpx.ConnectError):
            httpx.get(self.url(service) + "/healthz", timeout=2)

    def start(self, service: str) -> None:
        self.stack.start_service(service)
        self.stack.wait_ready(timeout=90)

    def log(self, service: str) -> str:
        return (self.stack.state_dir / "logs" / f"{service}.log").read_text()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartablePlatform]:
    state = tmp_path_factory.mktemp("resilience")
    with pytest.MonkeyPatch.context() as env:
        for name in [k for k in os.environ if k.startswith("GREENZONE_")]:
            env.delenv(name)  # the stack's own PostgreSQL and broker, as on a fresh machine
        env.setenv("GREENZONE_GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
        stack = DevStack(Path(state), port_offset=free_offset())
        try:
            stack.start_infrastructure()
            stack.migrate()
            stack.start_services()
            stack.wait_ready(timeout=90)
            yield RestartablePlatform(stack)
        finally:
            stack.stop()


@pytest.fixture
def api(platform: RestartablePlatform) -> Client:
    return Client(platform)  # type: ignore[arg-type]  # Client only needs url()


# --- a CI tool: GitHub webhooks -------------------------------------------------------------------------------------


def github(platform: RestartablePlatform, event: str, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = httpx.post(
        platform.url("pipeline-svc") + "/webhooks/github",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature,
        },
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response


def repository(repo: str) -> dict[str, Any]:
    return {"id": 1, "name": repo.split("/")[1], "full_name": repo, "default_branch": "main"}


def deployment_status(repo: str, number: int, sha: str, at: datetime, state: str, **payload: str) -> dict[str, Any]:
    return {
        "action": "created",
        "deployment_status": {"id": number, "state": state, "environment": "production", "created_at": iso(at)},
        "deployment": {"id": number, "sha": sha, "ref": "main", "environment": "production", "payload": payload},
        "repository": repository(repo),
        "sender": {"login": "deploy-bot"},
    }


def push(repo: str, sha: str, committed: datetime, pushed: datetime) -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": "0" * 39 + "1",
        "after": sha,
        "deleted": False,
        "repository": {**repository(repo), "pushed_at": int(pushed.timestamp())},
        "commits": [{"id": sha, "timestamp": iso(committed), "message": "work", "author": {"name": "dev"}}],
        "head_commit": {"id": sha, "timestamp": iso(committed)},
    }


def dora(api: Client, service: str, **period: str) -> dict[str, Any]:
    return dict(api.ok("report-svc", "GET", "/dora", VIEWER, params={"service": service, **period}))


def approved_change(api: Client, service: str, version: str) -> str:
    change = api.ok(
        "change-svc",
        "POST",
        "/changes",
        REQUESTER,
        json={
            "title": f"Ship {service} {version}",
            "type": "normal",
            "service": service,
            "environment": "production",
            "version": version,
        },
    )
    api.ok("change-svc", "POST", f"/changes/{change['id']}/submit", REQUESTER)
    api.approve_until_approved(change["id"], APPROVERS)
    return str(change["id"])


def release_through_staging(api: Client, service: str, version: str, changes: list[str], sha: str) -> str:
    release = api.ok(
        "release-svc",
        "POST",
        "/releases",
        RM,
        json={"name": unique("Resilience"), "version": version, "services": [service], "changes": changes},
    )
    rid = str(release["id"])
    api.ok("release-svc", "POST", f"/releases/{rid}/deployments", RM, json={"environment": "staging", "commit": sha})
    # release-svc learns of the approvals through Kafka: the gate allows once it has
    wait_for(lambda: api.gate(service, "production", version, sha)["decision"] == "allow", what="gate allows")
    return rid


# --- the scenarios ----------------------------------------------------------------------------------------------------

BURST = 40  # GitHub deployments of one service, one a day from BASE
BASE = datetime(2024, 1, 1, 12, tzinfo=UTC)


def failed(i: int) -> bool:
    return i % 5 == 4  # deployments 4, 9, …, 39 fail


def test_report_svc_killed_mid_burst_loses_nothing_and_counts_nothing_twice(
    api: Client, platform: RestartablePlatform
) -> None:
    """report-svc consumes every topic. It is SIGKILLed while it works through a burst of tool traffic, and stays
    down while the burst goes on and a release is deployed and closed; started again, it catches up."""
    service, version, sha = unique("orders"), "5.0.0", uuid.uuid4().hex + "00c0ffee"
    tool = unique("e2e-org/storefront")
    burst_service = tool.split("/")[1]

    # a change approved and a release through staging (report-svc sees it all as it happens)
    change_id = approved_change(api, service, version)
    rid = release_through_staging(api, service, version, [change_id], sha)

    def burst(indices: range) -> None:
        for i in indices:
            at = BASE + timedelta(days=i)
            commit = hashlib.sha1(f"{tool}{i}".encode()).hexdigest()  # noqa: S324 - a fake SHA, not security
            if not failed(i):
                github(platform, "push", push(tool, commit, at - timedelta(hours=3), at - timedelta(hours=2)))
            github(
                platform,
                "deployment_status",
                deployment_status(tool, i + 1, commit, at, "failure" if failed(i) else "success"),
            )

    period = {"from": iso(BASE.replace(hour=0)), "to": iso(BASE.replace(hour=0) + timedelta(days=BURST))}
    # the CI tool sends the burst; as soon as report-svc is seen working through it, it is killed, with no chance
    # to finish its batch or commit its offsets; the tool goes on sending meanwhile
    with ThreadPoolExecutor(1) as tool_traffic:
        sending = tool_traffic.submit(burst, range(BURST))
        wait_for(
            lambda: dora(api, burst_service, **period)["change_failure_rate"]["deployments"],
            what="report-svc consuming the burst",
        )
        platform.stop("report-svc", signal.SIGKILL)
        sending.result()

    # while it is down, the release goes to production and is closed
    api.ok("release-svc", "POST", f"/releases/{rid}/deployments", RM, json={"environment": "production", "commit": sha})
    wait_for(lambda: api.change(change_id)["state"] in ("completed", "closed"), what="change completed")
    api.ok("release-svc", "POST", f"/releases/{rid}/close", RM)

    platform.start("report-svc")

    # By hand (METRICS.md): 40 production deployments, one a day, of which 8 fail (days 4, 9, …, 39).
    # Frequency: 32 successes on 32 UTC days over the 40-day period = 0.8 a day (high).
    # Lead time: each success delivers its own commit, committed 3 h before (pushed 2 h before): 32 of 3.0 h (elite).
    # Failure rate: 8 ÷ 40 = 0.2 (low). Recovery: failures 4 … 34 are followed a day later by a success (24 h);
    # the last one (39) has none yet → 7 samples of 24.0 h. No incidents; no rework. Worst level: low.
    expected = {
        "deployment_frequency": {"deployments": 32, "deploy_days": 32, "per_day": 0.8, "level": "high"},
        "lead_time_for_changes": {"median_hours": 3.0, "p90_hours": 3.0, "changes": 32, "level": "elite"},
        "change_failure_rate": {"failed_deployments": 8, "deployments": 40, "rate": 0.2, "level": "low"},
        "time_to_restore": {"median_hours": None, "incidents": 0, "level": None},
        "failed_deployment_recovery_time": {"median_hours": 24.0, "samples": 7},
        "rework_rate": {"rework_deployments": 0, "deployments": 32, "rate": 0.0},
        "performance_level": "low",
    }

    def figures() -> dict[str, Any]:
        body = dora(api, burst_service, **period)
        return {k: body[k] for k in expected}

    try:
        wait_for(lambda: figures() == expected, timeout=120, what="report-svc caught up with the burst")
    finally:
        assert figures() == expected

    # the release closed while report-svc was down: its report is made when it hears of the closure, and revised
    # when facts it had not yet consumed (the change's outcome, the production deployment: other topics and
    # partitions, caught up in any order) reach it after that
    def report_with_outcome() -> dict[str, Any] | None:
        r = api.call("report-svc", "GET", f"/releases/{rid}/report", VIEWER)
        body = r.json() if r.status_code == 200 else None
        if not body or body["changes"]["implemented"] != [change_id]:
            return None
        return body if any(d["environment"] == "production" for d in body["deployments"]) else None

    report = wait_for(
        report_with_outcome, timeout=60, what="the release report with its change implemented and its deployment"
    )
    assert report["changes"] == {
        "implemented": [change_id],
        "failed": [],
        "rolled_back": [],
        "cancelled": [],
        "pending": [],
    }
    production = [d for d in report["deployments"] if d["environment"] == "production"]
    assert len(production) == 1 and production[0]["outcome"] == "success", report["deployments"]
    mine = dora(api, service)
    assert mine["deployment_frequency"]["deployments"] == 1
    assert mine["change_failure_rate"] == {"failed_deployments": 0, "deployments": 1, "rate": 0.0, "level": "elite"}

    time.sleep(3)  # anything redelivered after the restart has arrived by now: still exact
    assert figures() == expected
    assert dora(api, service)["deployment_frequency"]["deployments"] == 1


def test_change_svc_stopped_during_delivery_completes_each_change_once(
    api: Client, platform: RestartablePlatform
) -> None:
    """change-svc completes changes from the deployments it hears of. It is stopped (SIGTERM) after the approvals
    and is down while the release goes to production and the CI tool reports the same deployment; started again,
    it completes both changes, once each."""
    service, version, sha = unique("billing"), "6.1.0", uuid.uuid4().hex + "0ddba11f"
    tool = f"e2e-org/{service}"
    changes = [approved_change(api, service, version) for _ in range(2)]
    approvals = {c: len(api.change(c)["approvals"]) for c in changes}
    rid = release_through_staging(api, service, version, changes, sha)

    platform.stop("change-svc", signal.SIGTERM)
    api.ok("release-svc", "POST", f"/releases/{rid}/deployments", RM, json={"environment": "production", "commit": sha})
    # the CI tool reports the same deployment (same SHA and version, minutes later): one deployment, told twice
    github(
        platform,
        "deployment_status",
        deployment_status(tool, 7, sha, datetime.now(UTC) + timedelta(minutes=2), "success", version=version),
    )
    time.sleep(2)  # the events wait in the broker
    platform.start("change-svc")

    for change_id in changes:
        done = wait_for(
            lambda c=change_id: (ch := api.change(c))["state"] in ("completed", "closed") and ch,
            timeout=90,
            what=f"change {change_id} completed",
        )
        assert done["outcome"] == "successful"
        assert len(done["approvals"]) == approvals[change_id]

    time.sleep(3)  # both deliveries of the deployment (release-svc's and GitHub's) have been consumed by now
    for change_id in changes:
        history = api.ok("change-svc", "GET", f"/changes/{change_id}/history", REQUESTER)
        transitions = [(h["from_state"], h["to_state"]) for h in history]
        assert transitions.count(("approved", "implementing")) == 1, transitions
        assert transitions.count(("implementing", "completed")) == 1, transitions
        assert api.change(change_id)["outcome"] == "successful"

    # report-svc (never stopped) counts one deployment: release-svc's record and GitHub's report are the same one
    wait_for(lambda: dora(api, service)["deployment_frequency"]["deployments"] == 1, what="one deployment")
    report = dora(api, service)
    assert report["change_failure_rate"] == {"failed_deployments": 0, "deployments": 1, "rate": 0.0, "level": "elite"}
