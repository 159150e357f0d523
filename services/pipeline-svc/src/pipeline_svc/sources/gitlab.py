"""GitLab webhook payloads → facts. Pure: ``map_event(X-Gitlab-Event, payload)``.

Quirks the data shows: three timestamp formats (``parse_time`` reads them all); job events come with
``object_kind: "build"`` and their ``commit.id`` is the *pipeline* id (the SHA is ``sha``); deployment events carry
only ``short_sha`` and ``commit_url`` (the full SHA is read from the URL); job events from older GitLab versions
have no ``project`` object (the path comes from ``repository.homepage``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pipeline_svc.facts.policy import (
    is_sha,
    normalise_environment,
    parse_time,
    repository_path,
    seconds_between,
    sha_from_commit_url,
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

SOURCE = "gitlab"
#: X-Gitlab-Event header → the object_kind it carries
USED_EVENTS = {
    "Push Hook": "push",
    "Merge Request Hook": "merge_request",
    "Pipeline Hook": "pipeline",
    "Job Hook": "build",
    "Deployment Hook": "deployment",
    "Release Hook": "release",
}
PIPELINE_STATUSES = {"success": "success", "failed": "failure", "canceled": "cancel", "skipped": "success"}
RUNNING = {"running": "running", "created": "queued", "pending": "queued", "waiting_for_resource": "queued"}
DEPLOYMENT_STATUSES = {"success": "success", "failed": "failure"}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def project_path(p: dict[str, Any]) -> str | None:
    project = _dict(p.get("project"))
    path = _str(project.get("path_with_namespace"))
    if path:
        return path
    return repository_path(_str(project.get("web_url")) or _str(_dict(p.get("repository")).get("homepage")))


def default_branch(p: dict[str, Any]) -> str | None:
    return _str(_dict(p.get("project")).get("default_branch"))


def map_event(event: str, payload: dict[str, Any]) -> list[Fact]:
    kind = str(payload.get("object_kind") or USED_EVENTS.get(event, ""))
    mapper = _MAPPERS.get(kind)
    return mapper(payload) if mapper else []


def _push(p: dict[str, Any]) -> list[Fact]:
    ref = _str(p.get("ref")) or ""
    repository = project_path(p)
    after = _str(p.get("after")) or ""
    if not ref.startswith("refs/heads/") or not repository or set(after) == {"0"}:
        return []
    commits = []
    for c in p.get("commits") or []:
        c = _dict(c)
        at = parse_time(c.get("timestamp"))
        if not c.get("id") or at is None:
            continue
        commits.append(
            PushedCommit(
                sha=str(c["id"]),
                timestamp=at,
                message=_str(c.get("message")),
                author=_str(_dict(c.get("author")).get("name")),
                url=_str(c.get("url")),
            )
        )
    pushed_at = max((c.timestamp for c in commits), default=None)  # GitLab sends no push time
    if pushed_at is None:
        return []
    return [
        PushFact(
            ref=ServiceRef(repository=repository),
            repository=repository,
            branch=ref.removeprefix("refs/heads/"),
            default_branch=default_branch(p),
            pushed_at=pushed_at,
            source=SOURCE,
            source_id=f"{repository}:{ref}@{after}",  # one push per branch: the same commit reaches several
            commits=tuple(commits),
        )
    ]


def _merge_request(p: dict[str, Any]) -> list[Fact]:
    mr = _dict(p.get("object_attributes"))
    repository = project_path(p)
    if not repository or not (mr.get("action") == "merge" or mr.get("state") == "merged"):
        return []
    merged_at = parse_time(mr.get("merged_at")) or parse_time(mr.get("updated_at"))
    if merged_at is None:
        return []
    return [
        MergeFact(
            ref=ServiceRef(repository=repository),
            repository=repository,
            change_id=str(mr.get("id") or mr.get("iid")),
            number=_str(mr.get("iid")),
            title=_str(mr.get("title")),
            started_at=parse_time(mr.get("created_at")),
            merged_at=merged_at,
            commit=_str(mr.get("merge_commit_sha")) or _str(_dict(mr.get("last_commit")).get("id")),
            url=_str(mr.get("url")),
            source=SOURCE,
        )
    ]


def _pipeline(p: dict[str, Any]) -> list[Fact]:
    pl = _dict(p.get("object_attributes"))
    if not pl.get("id"):
        return []
    raw_status = str(pl.get("status") or "")
    outcome = PIPELINE_STATUSES.get(raw_status)
    created = parse_time(pl.get("created_at"))
    finished = parse_time(pl.get("finished_at")) if outcome else None
    duration = float(pl["duration"]) if isinstance(pl.get("duration"), int | float) else None
    queue = float(pl["queued_duration"]) if isinstance(pl.get("queued_duration"), int | float) else None
    started = finished - timedelta(seconds=duration) if finished and duration is not None else None
    if started is None and created and queue is not None:
        started = created + timedelta(seconds=queue)
    repository = project_path(p)
    return [
        RunFact(
            ref=ServiceRef(repository=repository),
            kind="pipeline",
            source=SOURCE,
            run_key=f"{repository}/pipelines/{pl['id']}",
            pipeline=_str(pl.get("name")) or f"{repository or 'pipeline'}:{pl.get('ref') or ''}".rstrip(":"),
            status="completed" if outcome else RUNNING.get(raw_status, "running"),
            outcome=outcome,
            queued_at=created,
            started_at=started,
            finished_at=finished,
            duration_s=duration if duration is not None else seconds_between(started, finished),
            queue_s=queue,
            repository=repository,
            branch=None if pl.get("tag") else _str(pl.get("ref")),
            commit=_str(pl.get("sha")),
            version=version_from_ref(_str(pl.get("ref")), default_branch(p)) if pl.get("tag") else None,
            url=_str(pl.get("url")),
        )
    ]


def _job(p: dict[str, Any]) -> list[Fact]:
    if not p.get("build_id"):
        return []
    raw_status = str(p.get("build_status") or "")
    outcome = PIPELINE_STATUSES.get(raw_status)
    created = parse_time(p.get("build_created_at"))
    started = parse_time(p.get("build_started_at"))
    finished = parse_time(p.get("build_finished_at")) if outcome else None
    duration = p.get("build_duration")
    queue = p.get("build_queued_duration")
    repository = project_path(p)
    sha = _str(p.get("sha"))  # NOT commit.id, which is the pipeline id in job events
    return [
        RunFact(
            ref=ServiceRef(repository=repository),
            kind="job",
            source=SOURCE,
            run_key=f"{repository}/jobs/{p['build_id']}",
            pipeline=" / ".join(x for x in (_str(p.get("build_stage")), _str(p.get("build_name"))) if x) or "job",
            status="completed" if outcome else RUNNING.get(raw_status, "running"),
            outcome=outcome,
            queued_at=created,
            started_at=started,
            finished_at=finished,
            duration_s=float(duration) if isinstance(duration, int | float) else seconds_between(started, finished),
            queue_s=float(queue) if isinstance(queue, int | float) else seconds_between(created, started),
            repository=repository,
            branch=None if p.get("tag") else _str(p.get("ref")),
            commit=sha if is_sha(sha) else None,
            url=f"{_str(_dict(p.get('repository')).get('homepage'))}/-/jobs/{p['build_id']}"
            if _dict(p.get("repository")).get("homepage")
            else None,
        )
    ]


def _deployment(p: dict[str, Any]) -> list[Fact]:
    outcome = DEPLOYMENT_STATUSES.get(str(p.get("status") or ""))
    at = parse_time(p.get("status_changed_at"))
    repository = project_path(p)
    if outcome is None or at is None or not p.get("deployment_id"):
        return []  # created, running, canceled: no outcome to count
    return [
        DeploymentFact(
            ref=ServiceRef(repository=repository),
            environment=normalise_environment(_str(p.get("environment"))),
            outcome=outcome,  # type: ignore[arg-type]
            at=at,
            source=SOURCE,
            source_id=f"{repository}/deployments/{p['deployment_id']}",
            version=version_from_ref(_str(p.get("ref")), default_branch(p)),
            commit=sha_from_commit_url(_str(p.get("commit_url"))) or _str(p.get("short_sha")),
            url=_str(p.get("deployable_url")),
        )
    ]


def _release(p: dict[str, Any]) -> list[Fact]:
    repository = project_path(p)
    tag = _str(p.get("tag"))
    at = parse_time(p.get("released_at")) or parse_time(p.get("created_at"))
    if p.get("action") not in ("create", None) or not repository or not tag or at is None:
        return []
    commit = _str(_dict(p.get("commit")).get("id"))
    return [
        ArtifactFact(
            ref=ServiceRef(repository=repository),
            name=repository.rsplit("/", 1)[-1],
            version=tag,
            published_at=at,
            source=SOURCE,
            source_id=f"{repository}/releases/{p.get('id') or tag}",
            commit=commit if is_sha(commit) else None,
        )
    ]


_MAPPERS = {
    "push": _push,
    "merge_request": _merge_request,
    "pipeline": _pipeline,
    "build": _job,
    "deployment": _deployment,
    "release": _release,
}
