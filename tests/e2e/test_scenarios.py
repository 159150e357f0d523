"""The lifecycle as its users live it, across the four services started the way ``make run`` starts them.

Only the outside world is faked: the CI tool (this test, signing webhooks as GitHub would) and the release's
notification receiver (a local HTTP server).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest

from greenzone_common.testing.helpers import bearer

from .conftest import Platform, start_platform, stop_platform

pytestmark = pytest.mark.integration

T = TypeVar("T")
GITHUB_SECRET = "e2e-github-webhook-secret-0123456789"

CI = bearer("ci-bot", "pipeline", "approver")  # a pipeline identity that also approves: SoD must stop it
REQUESTER = bearer("alice", "requester")
BOB = bearer("bob", "approver")
CAROL = bearer("carol", "approver", "cab")
DAVE = bearer("dave", "approver")
RM = bearer("rita", "release_manager", "admin")
VIEWER = bearer("victor", "viewer")
APPROVERS = [BOB, CAROL, DAVE]


def wait_for(check: Callable[[], T | None], timeout: float = 45.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
            result = None
        else:
            result = last
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


class Receiver:
    """The release's notification list: records every webhook POST (body and signature header)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.received.append({"headers": dict(self.headers), "body": json.loads(body or b"{}")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("scenarios"), {"GREENZONE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET})
    try:
        yield running
    finally:
        stop_platform(running)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Client:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.http = httpx.Client(timeout=30)

    def call(self, service: str, method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
        return self.http.request(method, self.platform.url(service) + path, headers=headers, **kw)

    def ok(self, service: str, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
        response = self.call(service, method, path, headers, **kw)
        assert response.status_code in (200, 201, 202), f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def change(self, change_id: str) -> dict[str, Any]:
        return dict(self.ok("change-svc", "GET", f"/changes/{change_id}", REQUESTER))

    def approve_until_approved(self, change_id: str, voters: list[dict[str, str]]) -> dict[str, Any]:
        for voter in voters:
            if self.change(change_id)["state"] == "approved":
                break
            self.ok(
                "change-svc",
                "POST",
                f"/changes/{change_id}/approvals",
                voter,
                json={"decision": "approve", "comment": "looks safe"},
            )
        change = self.change(change_id)
        assert change["state"] == "approved", change
        return change

    def gate(
        self, service: str, environment: str, version: str, commit: str | None = None, change_id: str | None = None
    ) -> dict[str, Any]:
        body = {
            "service": service,
            "environment": environment,
            "version": version,
            "commit": commit,
            "change_id": change_id,
        }
        return dict(self.ok("release-svc", "POST", "/gates/evaluate", CI, json=body))


@pytest.fixture
def api(platform: Platform) -> Client:
    return Client(platform)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def codes(decision: dict[str, Any]) -> set[str]:
    return {r["code"] for r in decision["reasons"]}


def test_gated_delivery_from_refusal_to_release_report(api: Client, receiver: Receiver) -> None:
    service, version, sha = unique("api"), "1.0.0", uuid.uuid4().hex + "abcdef01"

    # 1. the pipeline asks for production with no change: refused, and a draft change appears under the given id
    denied = api.gate(service, "production", version, sha)
    assert denied["decision"] == "deny" and "NO_APPROVED_CHANGE" in codes(denied), denied
    change_id = denied["change_id"]
    assert change_id
    draft = wait_for(
        lambda: (
            api.call("change-svc", "GET", f"/changes/{change_id}", REQUESTER).status_code == 200
            and api.change(change_id)
        ),
        what="the drafted change",
    )
    assert draft["state"] == "draft" and draft["requested_by"] == "ci-bot" and draft["service"] == service

    # 2. the requester submits; without evidence it waits for the approvers its risk needs
    submitted = api.ok("change-svc", "POST", f"/changes/{change_id}/submit", CI)
    assert submitted["state"] == "awaiting_approval" and not submitted["auto_approved"]
    sod = api.call(
        "change-svc", "POST", f"/changes/{change_id}/approvals", CI, json={"decision": "approve", "comment": "mine"}
    )
    assert sod.status_code == 403 and sod.json()["type"].endswith("/segregation-of-duties")
    api.approve_until_approved(change_id, APPROVERS)

    # 3. a release bundles it and goes to staging, then production (the gate allows)
    release = api.ok(
        "release-svc",
        "POST",
        "/releases",
        RM,
        json={
            "name": unique("Payments"),
            "version": version,
            "services": [service],
            "changes": [change_id],
            "milestones": {"deploy": iso(datetime.now(UTC) + timedelta(days=3))},
            "notify": [receiver.url],
        },
    )
    rid = release["id"]
    api.ok("release-svc", "POST", f"/releases/{rid}/deployments", RM, json={"environment": "staging", "commit": sha})
    # release-svc learns of the approval through Kafka: the gate allows once it has
    wait_for(lambda: api.gate(service, "production", version, sha)["decision"] == "allow", what="gate allows")
    api.ok("release-svc", "POST", f"/releases/{rid}/deployments", RM, json={"environment": "production", "commit": sha})

    # 4. the change is completed successful; the release is in early life support
    done = wait_for(
        lambda: (c := api.change(change_id))["state"] in ("completed", "closed") and c, what="change completed"
    )
    assert done["outcome"] == "successful"
    assert api.ok("release-svc", "GET", f"/releases/{rid}", RM)["state"] == "early_life_support"

    # 5. an incident is reported and resolved; the release is closed
    incident = api.ok(
        "pipeline-svc",
        "POST",
        "/incidents",
        RM,
        json={
            "service": service,
            "environment": "production",
            "title": "Latency",
            "severity": "high",
            "detected_at": iso(datetime.now(UTC)),
            "version": version,
        },
    )
    api.ok(
        "pipeline-svc",
        "POST",
        f"/incidents/{incident['id']}/resolve",
        RM,
        json={"resolved_at": iso(datetime.now(UTC) + timedelta(minutes=30))},
    )
    time.sleep(2)  # let report-svc see the incident before the closure
    api.ok("release-svc", "POST", f"/releases/{rid}/close", RM)

    # 6. the report exists with the score METRICS.md gives for this story:
    # C=1 (its one change successful), D=1, G=1 (no window, no freeze, allowed), Q=0 (no evidence),
    # S=1 (before the deploy milestone), E=0.5 (one incident, resolved within early life support) → 80
    report = wait_for(
        lambda: (r := api.call("report-svc", "GET", f"/releases/{rid}/report", VIEWER)).status_code == 200 and r.json(),
        what="the release report",
    )
    assert report["changes"]["implemented"] == [change_id]
    assert report["assessment"]["components"] == pytest.approx({"C": 1, "D": 1, "G": 1, "Q": 0, "S": 1, "E": 0.5})
    assert report["assessment"]["score"] == 80
    # and the notification list heard about it, signed
    wait_for(lambda: len(receiver.received) >= 2, what="notifications")
    assert all(any(k.lower().startswith("x-greenzone-signature") for k in n["headers"]) for n in receiver.received)


def test_evidence_based_approval(api: Client) -> None:
    service, version = unique("web"), "2.1.0"
    junit = (
        b'<?xml version="1.0"?><testsuite name="unit" tests="3" failures="0" errors="0" skipped="0">'
        b'<testcase name="a" classname="t"/><testcase name="b" classname="t"/><testcase name="c" classname="t"/>'
        b"</testsuite>"
    )
    sarif = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Semgrep", "rules": []}}, "results": []}]}
    api.ok(
        "pipeline-svc",
        "POST",
        f"/evidence/junit?service={service}&version={version}",
        {**CI, "Content-Type": "application/xml"},
        content=junit,
    )
    api.ok("pipeline-svc", "POST", f"/evidence/sarif?service={service}&version={version}", CI, json=sarif)

    def draft() -> dict[str, Any]:
        body = {
            "title": "Small tweak",
            "type": "normal",
            "service": service,
            "environment": "staging",
            "version": version,
            "commits": ["c" * 40],
            "planned_start": iso(datetime.now(UTC) + timedelta(hours=1)),
            "planned_end": iso(datetime.now(UTC) + timedelta(hours=2)),
        }
        return dict(api.ok("change-svc", "POST", "/changes", REQUESTER, json=body))

    def evidence_known(change: dict[str, Any]) -> bool:
        return not any(f["code"] == "NO_TEST_EVIDENCE" for f in change["risk"]["factors"])

    # the evidence reaches change-svc through Kafka: a new draft's risk shows when it has
    def draft_once_evidence_known() -> dict[str, Any] | None:
        change = draft()
        return change if evidence_known(change) else None

    change = wait_for(draft_once_evidence_known, what="evidence known to change-svc")
    submitted = api.ok("change-svc", "POST", f"/changes/{change['id']}/submit", REQUESTER)
    assert submitted["state"] == "approved" and submitted["auto_approved"] is True, submitted
    assert submitted["approvals"], "the policy's reasons are recorded as its approval"


def test_freeze_then_emergency_then_quality_gate(api: Client) -> None:
    service, version = unique("pay"), "3.0.0"
    now = datetime.now(UTC)
    api.ok(
        "release-svc",
        "POST",
        "/freezes",
        RM,
        json={
            "name": unique("Year end"),
            "start": iso(now - timedelta(hours=1)),
            "end": iso(now + timedelta(days=1)),
            "environments": ["production"],
            "services": [service],
            "reason": "e2e",
        },
    )
    time.sleep(1)
    assert "FREEZE_ACTIVE" in codes(api.gate(service, "production", version))

    emergency = api.ok(
        "change-svc",
        "POST",
        "/changes",
        REQUESTER,
        json={
            "title": "Hotfix",
            "type": "emergency",
            "service": service,
            "environment": "production",
            "version": version,
        },
    )
    api.ok("change-svc", "POST", f"/changes/{emergency['id']}/submit", REQUESTER)
    api.ok("change-svc", "POST", f"/changes/{emergency['id']}/approvals", CAROL, json={"decision": "approve"})
    assert api.change(emergency["id"])["state"] == "approved"

    allowed = wait_for(
        lambda: (d := api.gate(service, "production", version))["decision"] == "allow" and d, what="emergency override"
    )
    assert "EMERGENCY_OVERRIDE" in codes(allowed)

    api.ok("change-svc", "POST", f"/changes/{emergency['id']}/start", REQUESTER)
    completed = api.ok(
        "change-svc", "POST", f"/changes/{emergency['id']}/complete", REQUESTER, json={"outcome": "successful"}
    )
    assert completed["review_due"], "a post-implementation review is due"

    failing = (
        b'<testsuite name="unit" tests="2" failures="1" errors="0"><testcase name="a" classname="t"/>'
        b'<testcase name="b" classname="t"><failure message="boom"/></testcase></testsuite>'
    )
    api.ok(
        "pipeline-svc",
        "POST",
        f"/evidence/junit?service={service}&version={version}",
        {**CI, "Content-Type": "application/xml"},
        content=failing,
    )
    denied = wait_for(
        lambda: (d := api.gate(service, "production", version))["decision"] == "deny" and d, what="quality gate"
    )
    assert "QUALITY_GATE_FAILED" in codes(denied)


def test_rollback_marks_the_change_and_the_failure_rate(api: Client) -> None:
    service, version = unique("ledger"), "4.0.0"
    change = api.ok(
        "change-svc",
        "POST",
        "/changes",
        REQUESTER,
        json={
            "title": "Ledger upgrade",
            "type": "normal",
            "service": service,
            "environment": "production",
            "version": version,
        },
    )
    api.ok("change-svc", "POST", f"/changes/{change['id']}/submit", REQUESTER)
    api.approve_until_approved(change["id"], APPROVERS)
    release = api.ok(
        "release-svc",
        "POST",
        "/releases",
        RM,
        json={
            "name": unique("Ledger"),
            "version": version,
            "services": [service],
            "changes": [change["id"]],
        },
    )
    rid = release["id"]
    api.ok("release-svc", "POST", f"/releases/{rid}/deployments", RM, json={"environment": "staging"})
    # release-svc learns of the approval through Kafka: the gate allows once it has
    wait_for(lambda: api.gate(service, "production", version)["decision"] == "allow", what="gate sees the change")
    api.ok("release-svc", "POST", f"/releases/{rid}/deployments", RM, json={"environment": "production"})
    api.ok(
        "release-svc", "POST", f"/releases/{rid}/rollback", RM, json={"environment": "production", "reason": "errors"}
    )

    rolled = wait_for(lambda: (c := api.change(change["id"]))["outcome"] == "rolled_back" and c, what="rolled_back")
    assert rolled["state"] in ("completed", "closed")
    dora = wait_for(
        lambda: (
            (d := api.ok("report-svc", "GET", f"/dora?service={service}", VIEWER))["change_failure_rate"][
                "failed_deployments"
            ]
            == 1
            and d
        ),
        what="change failure rate",
    )
    assert dora["change_failure_rate"]["deployments"] == 1 and dora["change_failure_rate"]["rate"] == 1.0


def test_unrecorded_production_deployment_from_github_is_listed(api: Client, platform: Platform) -> None:
    repo = unique("octo-org/checkout")
    service = repo.split("/")[1]
    sha = uuid.uuid4().hex + "0badc0de"
    now = iso(datetime.now(UTC))
    payload = {
        "action": "created",
        "deployment_status": {
            "id": 1,
            "state": "success",
            "environment": "production",
            "created_at": now,
            "updated_at": now,
        },
        "deployment": {
            "id": 42,
            "sha": sha,
            "ref": "main",
            "environment": "production",
            "created_at": now,
            "updated_at": now,
            "payload": {},
        },
        "repository": {"id": 7, "name": service, "full_name": repo, "default_branch": "main"},
        "sender": {"login": "octocat"},
    }
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = httpx.post(
        platform.url("pipeline-svc") + "/webhooks/github",
        content=body,
        headers={
            "X-GitHub-Event": "deployment_status",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature,
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 202, response.text

    def listed() -> Any:
        trace = api.ok("report-svc", "GET", "/traceability", VIEWER)
        text = json.dumps(trace)
        return trace if sha in text or service in text else None

    trace = wait_for(listed, what="unrecorded deployment")
    unrecorded = json.dumps(trace.get("unrecorded", trace))
    assert service in unrecorded
