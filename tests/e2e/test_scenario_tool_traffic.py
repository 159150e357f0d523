"""Real tool traffic: every shared conformance payload (GitHub and GitLab webhooks, CDEvents v0.4.1 and v0.5.1,
Tekton) sent to pipeline-svc's public endpoints as the tools send them, and the DORA figures report-svc then
serves, worked out by hand from METRICS.md and the payloads' contents.

The payloads are read as they are (``../shared/conformance``). The one liberty taken: the CDEvents examples all
share one ``context.id`` and source, which would make them one event as far as the CloudEvents ``(source, id)``
dedupe goes, so each is sent under an id of its own (as a real producer would give them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from greenzone_common.testing.conformance import conformance_dir
from greenzone_common.testing.helpers import bearer

from .conftest import Platform, start_platform, stop_platform
from .test_scenarios import wait_for

pytestmark = pytest.mark.integration

GITHUB_SECRET = "e2e-tool-traffic-github-secret-0123456789"
GITLAB_TOKEN = "e2e-tool-traffic-gitlab-token-0123456789"
CI = bearer("tekton-bot", "pipeline")
VIEWER = bearer("victor", "viewer")
CONFORMANCE = conformance_dir(Path(__file__))
GITLAB_EVENT_HEADER = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
    "pipeline": "Pipeline Hook",
    "build": "Job Hook",  # job events say object_kind "build"
    "deployment": "Deployment Hook",
    "release": "Release Hook",
    "issue": "Issue Hook",
}

# Every timestamp in the payloads lies in [2011-12-12 (the oldest GitLab commit), 2023-03-20 (the CDEvents)]:
# the period asked for covers them all. It is 4139 days long.
PERIOD = {"from": "2011-12-01T00:00:00Z", "to": "2023-04-01T00:00:00Z"}

NO_LEAD_TIME = {"median_hours": None, "p90_hours": None, "changes": 0, "level": None}
NO_RESTORE = {"median_hours": None, "incidents": 0, "level": None}
NO_RECOVERY = {"median_hours": None, "samples": 0}

# --- the expected figures, by hand ---------------------------------------------------------------------------------
#
# Production deployments: only GitHub's deployment_status examples name `production`. created.1, .3 and .4 are
# `success` statuses of one deployment (id 145988746 of Codertocat/Hello-World, sha f95f852b…, updated_at
# 2019-05-15T15:20:55Z): reports of the same service, environment and SHA within 15 minutes are one deployment.
# created.2 is `in_progress` (to github-pages): no outcome, no deployment. GitLab's deployments go to `staging`,
# the CDEvents service.deployed/upgraded to `test123`, the CDEvents incident happened in `prod1` — none of them is
# production (only `prod` and `prd` are spellings of it).
#
# Commits for lead time:
# - GitHub push event.5 and event.6 are the same push to refs/heads/master (= the default branch) of Hello-World:
#   one commit 6113728f…, timestamp 15:19:25Z, push time = repository.pushed_at 1557933657 = 2019-05-15T15:20:57Z.
#   Its delivering deployment would be the first successful production deployment of Hello-World whose SHA is
#   6113728f… (none: the deployment is of f95f852b…) or whose time is at or after the push time (none: the only
#   deployment, 15:20:55Z, is two seconds *before* the push). So it is not delivered: no lead-time sample. (Taking
#   the commit timestamp instead of the push time would wrongly give 90 s.)
# - the other pushes (event.1 to .4, .7) are tags or deletions; GitLab's push (mike/diaspora, two commits) and the
#   CDEvents change.merged (TestOrg, started at its change.created) have no production deployment at all.
# → lead time: no samples, nulls.
#
# Change failure rate: 1 deployment with an outcome, success, no production rollback, no production incident → 0/1.
# Frequency over the 4139 days: 1 ÷ 4139 = 0.000242 → 0.0002 per day (low: below 1/30). One UTC day.
# Rework: the deployment delivers no emergency change and no incident of Hello-World was open → 0/1.
# Performance level: the worst of the non-null levels (frequency low, failure rate elite) → low.
PRODUCTION = {
    "deployment_frequency": {"deployments": 1, "deploy_days": 1, "per_day": 0.0002, "level": "low"},
    "lead_time_for_changes": NO_LEAD_TIME,
    "change_failure_rate": {"failed_deployments": 0, "deployments": 1, "rate": 0.0, "level": "elite"},
    "time_to_restore": NO_RESTORE,
    "failed_deployment_recovery_time": NO_RECOVERY,
    "rework_rate": {"rework_deployments": 0, "deployments": 1, "rate": 0.0},
    "performance_level": "low",
}

# The same deployment seen over its own UTC day [2019-05-15, 2019-05-16): 1 deployment ÷ 1 day = 1.0 (elite); the
# failure rate is elite too → elite.
HELLO_WORLD_THAT_DAY = {
    **PRODUCTION,
    "deployment_frequency": {"deployments": 1, "deploy_days": 1, "per_day": 1.0, "level": "elite"},
    "performance_level": "elite",
}

# myapp in test123 (CDEvents): service.deployed and service.upgraded of v0.4.1 and of v0.5.1 are four reports of
# pkg:oci/myapp@sha256:0b31…, all at 2023-03-20T14:27:05.315384Z. None carries a SHA; all carry the same version
# (the digest): one deployment, success. Both service.rolledback examples (same service, environment, time) come at
# or after it with no later success: it was rolled back → 1 failed of 1 (rate 1.0, low). With no later successful
# deployment there is no recovery sample. The incident names service `myApp` in `prod1`: not this service here.
# Frequency 1 ÷ 4139 → 0.0002 (low). Rework 0/1. Worst level: low.
MYAPP_TEST123 = {
    "deployment_frequency": {"deployments": 1, "deploy_days": 1, "per_day": 0.0002, "level": "low"},
    "lead_time_for_changes": NO_LEAD_TIME,
    "change_failure_rate": {"failed_deployments": 1, "deployments": 1, "rate": 1.0, "level": "low"},
    "time_to_restore": NO_RESTORE,
    "failed_deployment_recovery_time": NO_RECOVERY,
    "rework_rate": {"rework_deployments": 0, "deployments": 1, "rate": 0.0},
    "performance_level": "low",
}

# myApp in prod1 (CDEvents incident-123 of /monitoring/prod1): detected and reported (start = the earlier of them,
# 2022-11-11T13:52:20.079Z) and resolved (end, the same instant), in both releases: one incident, resolved in the
# period, restored in 0 h (elite). No deployments: frequency and failure rate have no samples (nulls, not 0).
# The only non-null level is elite.
MYAPP_PROD1 = {
    "deployment_frequency": {"deployments": 0, "deploy_days": 0, "per_day": None, "level": None},
    "lead_time_for_changes": NO_LEAD_TIME,
    "change_failure_rate": {"failed_deployments": 0, "deployments": 0, "rate": None, "level": None},
    "time_to_restore": {"median_hours": 0.0, "incidents": 1, "level": "elite"},
    "failed_deployment_recovery_time": NO_RECOVERY,
    "rework_rate": {"rework_deployments": 0, "deployments": 0, "rate": None},
    "performance_level": "elite",
}

# test-deployment-webhooks in staging (GitLab): the two Deployment Hook examples are deployment 15, `success`,
# status_changed_at 2021-04-28 21:50:00 +0200 = 19:50:00Z, full SHA 279484c0… from commit_url: one deployment.
# No commits of that project: no lead time. 0 failed of 1. Frequency 1 ÷ 4139 (low). Worst level: low.
GITLAB_STAGING = {
    "deployment_frequency": {"deployments": 1, "deploy_days": 1, "per_day": 0.0002, "level": "low"},
    "lead_time_for_changes": NO_LEAD_TIME,
    "change_failure_rate": {"failed_deployments": 0, "deployments": 1, "rate": 0.0, "level": "elite"},
    "time_to_restore": NO_RESTORE,
    "failed_deployment_recovery_time": NO_RECOVERY,
    "rework_rate": {"rework_deployments": 0, "deployments": 1, "rate": 0.0},
    "performance_level": "low",
}

NOTHING = {
    "deployment_frequency": {"deployments": 0, "deploy_days": 0, "per_day": None, "level": None},
    "lead_time_for_changes": NO_LEAD_TIME,
    "change_failure_rate": {"failed_deployments": 0, "deployments": 0, "rate": None, "level": None},
    "time_to_restore": NO_RESTORE,
    "failed_deployment_recovery_time": NO_RECOVERY,
    "rework_rate": {"rework_deployments": 0, "deployments": 0, "rate": None},
    "performance_level": None,
}

EXPECTED: list[tuple[dict[str, str], dict[str, Any]]] = [
    ({**PERIOD}, PRODUCTION),  # all services, production
    ({**PERIOD, "service": "Hello-World"}, PRODUCTION),
    ({"service": "Hello-World", "from": "2019-05-15T00:00:00Z", "to": "2019-05-16T00:00:00Z"}, HELLO_WORLD_THAT_DAY),
    ({**PERIOD, "service": "myapp", "environment": "test123"}, MYAPP_TEST123),
    ({**PERIOD, "service": "myApp", "environment": "prod1"}, MYAPP_PROD1),
    ({**PERIOD, "service": "test-deployment-webhooks", "environment": "staging"}, GITLAB_STAGING),
    ({**PERIOD, "service": "myapp"}, NOTHING),  # test123 is not production
    ({**PERIOD, "service": "diaspora"}, NOTHING),  # commits, never deployed
]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(
        tmp_path_factory.mktemp("tool-traffic"),
        {"GREENZONE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET, "GREENZONE_GITLAB_WEBHOOK_TOKEN": GITLAB_TOKEN},
    )
    try:
        yield running
    finally:
        stop_platform(running)


# --- the tools ------------------------------------------------------------------------------------------------------


def github_deliveries() -> list[tuple[str, bytes, dict[str, str]]]:
    """Every GitHub example as GitHub delivers it: the event name in X-GitHub-Event, the body signed."""
    out = []
    for n, path in enumerate(sorted(CONFORMANCE.glob("github/*/*.json"))):
        body = path.read_bytes()
        signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": path.parent.name,
            "X-GitHub-Delivery": f"e2e-github-{n}",
            "X-Hub-Signature-256": signature,
        }
        out.append((f"github/{path.parent.name}/{path.name}", body, headers))
    return out


def gitlab_deliveries() -> list[tuple[str, bytes, dict[str, str]]]:
    out = []
    for n, path in enumerate(sorted(CONFORMANCE.glob("gitlab/*/*.json"))):
        body = path.read_bytes()
        headers = {
            "Content-Type": "application/json",
            "X-Gitlab-Event": GITLAB_EVENT_HEADER[json.loads(body)["object_kind"]],
            "X-Gitlab-Event-UUID": f"e2e-gitlab-{n}",
            "X-Gitlab-Token": GITLAB_TOKEN,
        }
        out.append((f"gitlab/{path.parent.name}/{path.name}", body, headers))
    return out


def cdevents(release: str) -> list[dict[str, Any]]:
    events = []
    for path in sorted((CONFORMANCE / "cdevents" / release / "examples").glob("*.json")):
        event = json.loads(path.read_text())
        event["context"]["id"] = f"{release}-{path.stem}-{event['context']['id']}"
        events.append(event)
    return events


def structured(event: dict[str, Any]) -> dict[str, Any]:
    """A CDEvent as a structured-mode CloudEvent (cdevents/cloudevents-binding.md)."""
    ctx = event["context"]
    return {
        "specversion": "1.0",
        "id": ctx["id"],
        "source": ctx["source"],
        "type": ctx["type"],
        "subject": event["subject"]["id"],
        "time": ctx["timestamp"],
        "datacontenttype": "application/json",
        "data": event,
    }


def binary_headers(event: dict[str, Any]) -> dict[str, str]:
    ctx = event["context"]
    return {
        **CI,
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": ctx["id"],
        "ce-source": ctx["source"],
        "ce-type": ctx["type"],
        "ce-subject": event["subject"]["id"],
        "ce-time": ctx["timestamp"],
    }


def send_all(http: httpx.Client, base: str) -> list[tuple[str, int, dict[str, Any]]]:
    """Everything, once: GitHub, GitLab, CDEvents v0.4.1 as one batch, v0.5.1 one binary-mode event at a time,
    Tekton in binary mode. Returns (what, status, body) per request."""
    answers = []
    for what, body, headers in github_deliveries():
        r = http.post(f"{base}/webhooks/github", content=body, headers=headers)
        answers.append((what, r.status_code, r.json()))
    for what, body, headers in gitlab_deliveries():
        r = http.post(f"{base}/webhooks/gitlab", content=body, headers=headers)
        answers.append((what, r.status_code, r.json()))
    batch = [structured(e) for e in cdevents("v0.4.1")]
    r = http.post(
        f"{base}/events",
        content=json.dumps(batch),
        headers={**CI, "Content-Type": "application/cloudevents-batch+json"},
    )
    answers.append(("cdevents/v0.4.1 batch", r.status_code, r.json()))
    for event in cdevents("v0.5.1"):
        r = http.post(f"{base}/events", content=json.dumps(event), headers=binary_headers(event))
        answers.append((f"cdevents/v0.5.1 {event['context']['type']}", r.status_code, r.json()))
    tekton_headers = json.loads((CONFORMANCE / "tekton/taskrun.unknown.v1.headers.json").read_text())
    tekton = {k.lower(): v for k, v in tekton_headers.items()}
    r = http.post(
        f"{base}/events",
        content=(CONFORMANCE / "tekton/taskrun.unknown.v1.data.json").read_bytes(),
        headers={**CI, **tekton, "Content-Type": "application/json"},
    )
    answers.append(("tekton taskrun", r.status_code, r.json()))
    return answers


def figures(http: httpx.Client, base: str) -> list[dict[str, Any]]:
    out = []
    for query, _ in EXPECTED:
        r = http.get(f"{base}/dora", params=query, headers=VIEWER)
        assert r.status_code == 200, r.text
        body = r.json()
        out.append({k: body[k] for k in PRODUCTION})
    return out


def test_conformance_traffic_gives_the_dora_figures_worked_out_by_hand(platform: Platform) -> None:
    pipeline, report = platform.url("pipeline-svc"), platform.url("report-svc")
    expected = [e for _, e in EXPECTED]
    with httpx.Client(timeout=30) as http:
        first = send_all(http, pipeline)
        refused = [(what, status, body) for what, status, body in first if status != 202]
        assert not refused, refused  # every payload is accepted (or, for events the platform does not use, ignored)
        by_what = {what: body for what, _, body in first}
        assert by_what["cdevents/v0.4.1 batch"]["accepted"] == len(cdevents("v0.4.1"))

        # report-svc learns it all through Kafka: wait until the figures are the ones worked out above
        def settled() -> list[dict[str, Any]] | None:
            got = figures(http, report)
            return got if got == expected else None

        try:
            wait_for(settled, timeout=60, what="the DORA figures")
        finally:  # on a timeout, say which figure differs
            for (query, want), got in zip(EXPECTED, figures(http, report), strict=True):
                assert got == want, f"/dora?{urlencode(query)}"

        # the tools deliver it all again (a retry storm): every stored delivery is a duplicate, nothing counts twice
        again = send_all(http, pipeline)
        stored = {what for what, _, body in first if body["status"] == "accepted"}
        assert stored, first
        for what, status, body in again:
            if what in stored:
                assert (status, body["status"]) == (200, "duplicate"), (what, status, body)
        time.sleep(3)  # long enough for anything published by the replay to reach report-svc
        for (query, want), got in zip(EXPECTED, figures(http, report), strict=True):
            assert got == want, f"/dora?{urlencode(query)} after the replay"
