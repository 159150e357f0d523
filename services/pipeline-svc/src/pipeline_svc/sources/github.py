"""GitHub webhook payloads → facts. Pure: ``map_event(X-GitHub-Event, payload)``.

Quirks the data shows: a ``workflow_run`` "completed" delivery may still say ``status: queued`` (the status, not
the action, decides whether the run finished); a ``pull_request`` "closed" delivery is a merge only when
``merged`` is true; ``repository.pushed_at`` is Unix seconds in push events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline_svc.facts.policy import (
    normalise_environment,
    parse_time,
    seconds_between,
    version_from_ref,
)
from pipeline_svc.sources.facts import (
    ArtifactFact,
    DeploymentFact,
    Fact,
    MergeFact,
    PushedCommit,
    PushFact,
    RunFact,
    ServiceRef,
)

SOURCE = "github"
USED_EVENTS = frozenset(
    {
        "push",
        "pull_request",
        "workflow_run",
        "workflow_job",
        "check_suite",
        "check_run",
        "status",
        "deployment",
        "deployment_status",
        "release",
    }
)

#: check/workflow conclusions → CDEvents outcomes
CONCLUSIONS = {
    "success": "success",
    "neutral": "success",
    "skipped": "success",
    "failure": "failure",
    "timed_out": "failure",
    "startup_failure": "failure",
    "cancelled": "cancel",
    "action_required": "error",
    "stale": "error",
}
STATUS_STATES = {"success": "success", "failure": "failure", "error": "error"}
DEPLOYMENT_STATES = {"success": "success", "failure": "failure", "error": "failure"}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def repository_of(payload: dict[str, Any]) -> str | None:
    return _str(_dict(payload.get("repository")).get("full_name"))


def _ref(payload: dict[str, Any]) -> ServiceRef:
    return ServiceRef(repository=repository_of(payload))


def map_event(event: str, payload: dict[str, Any]) -> list[Fact]:
    mapper = _MAPPERS.get(event)
    return mapper(payload) if mapper else []


def _push(p: dict[str, Any]) -> list[Fact]:
    ref = _str(p.get("ref")) or ""
    repository = repository_of(p)
    if not ref.startswith("refs/heads/") or p.get("deleted") or not repository:
        return []  # tags and branch deletions are not commits reaching a branch
    commits = []
    for c in p.get("commits") or []:
        c = _dict(c)
        at = parse_time(c.get("timestamp"))
        if not c.get("id") or at is None:
            continue
        author = _dict(c.get("author"))
        commits.append(
            PushedCommit(
                sha=str(c["id"]),
                timestamp=at,
                message=_str(c.get("message")),
                author=_str(author.get("username") or author.get("name")),
                url=_str(c.get("url")),
            )
        )
    repo = _dict(p.get("repository"))
    pushed_at = parse_time(repo.get("pushed_at")) or max((c.timestamp for c in commits), default=None)
    if pushed_at is None:
        pushed_at = parse_time(_dict(p.get("head_commit")).get("timestamp"))
    if pushed_at is None:
        return []
    return [
        PushFact(
            ref=ServiceRef(repository=repository),
            repository=repository,
            branch=ref.removeprefix("refs/heads/"),
            default_branch=_str(repo.get("default_branch")),
            pushed_at=pushed_at,
            source=SOURCE,
            source_id=f"{repository}:{ref}@{p.get('after')}",  # one push per branch: the same commit reaches several
            commits=tuple(commits),
        )
    ]


def _pull_request(p: dict[str, Any]) -> list[Fact]:
    pr = _dict(p.get("pull_request"))
    merged_at = parse_time(pr.get("merged_at"))
    repository = repository_of(p)
    if p.get("action") != "closed" or pr.get("merged") is not True or merged_at is None or not repository:
        return []
    return [
        MergeFact(
            ref=ServiceRef(repository=repository),
            repository=repository,
            change_id=str(pr.get("id") or pr.get("number")),
            number=_str(pr.get("number") or p.get("number")),
            title=_str(pr.get("title")),
            started_at=parse_time(pr.get("created_at")),
            merged_at=merged_at,
            commit=_str(pr.get("merge_commit_sha")),
            url=_str(pr.get("html_url")),
            source=SOURCE,
        )
    ]


def _finished(status: Any, conclusion: Any) -> tuple[str, str | None]:
    if status == "completed":
        return "completed", CONCLUSIONS.get(str(conclusion), "error")
    return ("queued" if status in ("queued", "requested", "waiting", "pending") else "running"), None


def _workflow_run(p: dict[str, Any]) -> list[Fact]:
    run = _dict(p.get("workflow_run"))
    if not run.get("id"):
        return []
    status, outcome = _finished(run.get("status"), run.get("conclusion"))
    queued = parse_time(run.get("created_at"))
    started = parse_time(run.get("run_started_at")) or queued
    finished = parse_time(run.get("updated_at")) if status == "completed" else None
    attempt = run.get("run_attempt") or 1
    return [
        RunFact(
            ref=_ref(p),
            kind="pipeline",
            source=SOURCE,
            run_key=f"{repository_of(p)}/actions/runs/{run['id']}/{attempt}",
            pipeline=_str(_dict(p.get("workflow")).get("name")) or _str(run.get("name")) or "workflow",
            status=status,
            outcome=outcome,
            queued_at=queued,
            started_at=started,
            finished_at=finished,
            duration_s=seconds_between(started, finished),
            queue_s=seconds_between(queued, started),
            repository=repository_of(p),
            branch=_str(run.get("head_branch")),
            commit=_str(run.get("head_sha")),
            url=_str(run.get("html_url")),
        )
    ]


def _workflow_job(p: dict[str, Any]) -> list[Fact]:
    job = _dict(p.get("workflow_job"))
    if not job.get("id"):
        return []
    status, outcome = _finished(job.get("status"), job.get("conclusion"))
    queued = parse_time(job.get("created_at"))
    started = parse_time(job.get("started_at"))
    finished = parse_time(job.get("completed_at")) if status == "completed" else None
    return [
        RunFact(
            ref=_ref(p),
            kind="job",
            source=SOURCE,
            run_key=f"{repository_of(p)}/actions/jobs/{job['id']}",
            pipeline=" / ".join(x for x in (_str(job.get("workflow_name")), _str(job.get("name"))) if x) or "job",
            status=status,
            outcome=outcome,
            queued_at=queued,
            started_at=started,
            finished_at=finished,
            duration_s=seconds_between(started, finished),
            queue_s=seconds_between(queued, started),
            repository=repository_of(p),
            branch=_str(job.get("head_branch")),
            commit=_str(job.get("head_sha")),
            url=_str(job.get("html_url")),
        )
    ]


def _check_suite(p: dict[str, Any]) -> list[Fact]:
    suite = _dict(p.get("check_suite"))
    if not suite.get("id"):
        return []
    status, outcome = _finished(suite.get("status"), suite.get("conclusion"))
    created = parse_time(suite.get("created_at"))
    finished = parse_time(suite.get("updated_at")) if status == "completed" else None
    return [
        RunFact(
            ref=_ref(p),
            kind="check_suite",
            source=SOURCE,
            run_key=f"{repository_of(p)}/check-suites/{suite['id']}",
            pipeline=_str(_dict(suite.get("app")).get("name")) or "check suite",
            status=status,
            outcome=outcome,
            started_at=created,
            finished_at=finished,
            duration_s=seconds_between(created, finished),
            repository=repository_of(p),
            branch=_str(suite.get("head_branch")),
            commit=_str(suite.get("head_sha")),
            url=_str(suite.get("url")),
        )
    ]


def _check_run(p: dict[str, Any]) -> list[Fact]:
    check = _dict(p.get("check_run"))
    if not check.get("id"):
        return []
    status, outcome = _finished(check.get("status"), check.get("conclusion"))
    started = parse_time(check.get("started_at"))
    finished = parse_time(check.get("completed_at")) if status == "completed" else None
    return [
        RunFact(
            ref=_ref(p),
            kind="check_run",
            source=SOURCE,
            run_key=f"{repository_of(p)}/check-runs/{check['id']}",
            pipeline=_str(check.get("name")) or "check run",
            status=status,
            outcome=outcome,
            started_at=started,
            finished_at=finished,
            duration_s=seconds_between(started, finished),
            repository=repository_of(p),
            branch=_str(_dict(check.get("check_suite")).get("head_branch")),
            commit=_str(check.get("head_sha")),
            url=_str(check.get("html_url")),
        )
    ]


def _status(p: dict[str, Any]) -> list[Fact]:
    state = str(p.get("state") or "")
    outcome = STATUS_STATES.get(state)
    at = parse_time(p.get("updated_at")) or parse_time(p.get("created_at"))
    branches = [_str(_dict(b).get("name")) for b in p.get("branches") or []]
    return [
        RunFact(
            ref=_ref(p),
            kind="status",
            source=SOURCE,
            run_key=f"{repository_of(p)}/statuses/{p.get('sha')}/{p.get('context') or 'default'}",
            pipeline=_str(p.get("context")) or "status",
            status="completed" if outcome else "running",
            outcome=outcome,
            started_at=parse_time(p.get("created_at")),
            finished_at=at if outcome else None,
            repository=repository_of(p),
            branch=branches[0] if branches else None,
            commit=_str(p.get("sha")),
            url=_str(p.get("target_url")),
        )
    ]


def deployment_version(deployment: dict[str, Any]) -> str | None:
    payload = _dict(deployment.get("payload"))
    return _str(payload.get("version")) or version_from_ref(_str(deployment.get("ref")))


def deployment_change_id(deployment: dict[str, Any]) -> str | None:
    payload = _dict(deployment.get("payload"))
    return _str(payload.get("change_id") or payload.get("greenzone_change_id"))


def _deployment(p: dict[str, Any]) -> list[Fact]:
    return []  # a deployment is created before its outcome; deployment_status reports the outcome


def _deployment_status(p: dict[str, Any]) -> list[Fact]:
    status = _dict(p.get("deployment_status"))
    deployment = _dict(p.get("deployment"))
    outcome = DEPLOYMENT_STATES.get(str(status.get("state")))
    at = parse_time(status.get("updated_at")) or parse_time(status.get("created_at"))
    if outcome is None or at is None or not deployment.get("id"):
        return []  # pending, queued, in_progress, inactive: no outcome yet
    return [
        DeploymentFact(
            ref=_ref(p),
            environment=normalise_environment(_str(status.get("environment")) or _str(deployment.get("environment"))),
            outcome=outcome,  # type: ignore[arg-type]
            at=at,
            source=SOURCE,
            source_id=f"{repository_of(p)}/deployments/{deployment['id']}",
            version=deployment_version(deployment),
            commit=_str(deployment.get("sha")),
            change_id=deployment_change_id(deployment),
            url=_str(status.get("target_url")) or _str(status.get("environment_url")),
        )
    ]


def _release(p: dict[str, Any]) -> list[Fact]:
    release = _dict(p.get("release"))
    repository = repository_of(p)
    at: datetime | None = parse_time(release.get("published_at"))
    if p.get("action") not in ("published", "released") or release.get("draft") or not repository or at is None:
        return []
    tag = _str(release.get("tag_name"))
    if not tag:
        return []
    target = _str(release.get("target_commitish"))
    return [
        ArtifactFact(
            ref=ServiceRef(repository=repository),
            name=repository.rsplit("/", 1)[-1],
            version=tag,
            published_at=at,
            source=SOURCE,
            source_id=f"{repository}/releases/{release.get('id')}",
            commit=target if target and len(target) == 40 else None,
        )
    ]


_MAPPERS = {
    "push": _push,
    "pull_request": _pull_request,
    "workflow_run": _workflow_run,
    "workflow_job": _workflow_job,
    "check_suite": _check_suite,
    "check_run": _check_run,
    "status": _status,
    "deployment": _deployment,
    "deployment_status": _deployment_status,
    "release": _release,
}
