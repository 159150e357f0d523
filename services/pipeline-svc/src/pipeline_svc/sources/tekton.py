"""Tekton Pipelines CloudEvents (format ``tektonv1``): ``dev.tekton.event.{taskrun,pipelinerun,customrun}.<state>.v1``
with the run object under ``taskRun`` / ``pipelineRun`` / ``customRun``. Pure: ``map_event(type, data, time)``.

The service comes from the run's parameters when one names a git repository (``git-url``, ``repo-url``, ``url`` …),
else the ``app.kubernetes.io/part-of`` label, else the pipeline's (or task's) name.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pipeline_svc.facts.policy import is_sha, parse_time, repository_path, seconds_between
from pipeline_svc.sources.facts import Fact, RunFact, ServiceRef

SOURCE = "tekton"
PREFIX = "dev.tekton.event."
_TYPE = re.compile(r"^dev\.tekton\.event\.(taskrun|pipelinerun|customrun)\.([a-z]+)\.v1$")
STATES = {"queued": "queued", "started": "running", "running": "running", "unknown": "running"}
OUTCOMES = {"successful": "success", "failed": "failure"}
ROOTS = {"taskrun": "taskRun", "pipelinerun": "pipelineRun", "customrun": "customRun"}
REPO_PARAMS = ("git-url", "repo-url", "repository", "repo", "gitrepositoryurl", "url")
REVISION_PARAMS = ("gitrevision", "git-revision", "revision", "commit", "sha")


class UnknownTektonType(ValueError):
    pass


def parse_type(type_name: str) -> tuple[str, str]:
    match = _TYPE.match(type_name)
    if not match or (match.group(2) not in STATES and match.group(2) not in OUTCOMES):
        raise UnknownTektonType(f"{type_name!r} is not a Tekton event type (dev.tekton.event.<kind>.<state>.v1)")
    return match.group(1), match.group(2)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _params(spec: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for param in spec.get("params") or []:
        param = _dict(param)
        if isinstance(param.get("name"), str) and isinstance(param.get("value"), str):
            out[param["name"].lower()] = param["value"]
    return out


def _repository(params: dict[str, str]) -> str | None:
    for name in REPO_PARAMS:
        value = params.get(name)
        if value and (value.endswith(".git") or value.startswith("git@")):
            return repository_path(value.split(":", 1)[1] if value.startswith("git@") else value)
        if value and name != "url" and "://" in value:
            return repository_path(value)
    return None


def map_event(type_name: str, data: dict[str, Any], time: datetime | None) -> list[Fact]:
    kind, state = parse_type(type_name)
    run = _dict(data.get(ROOTS[kind]))
    meta = _dict(run.get("metadata"))
    spec = _dict(run.get("spec"))
    status = _dict(run.get("status"))
    labels = _dict(meta.get("labels"))
    params = _params(spec)
    name = str(meta.get("name") or "")
    if not name:
        return []
    ref_obj = _dict(spec.get("pipelineRef") if kind == "pipelinerun" else spec.get("taskRef"))
    pipeline = str(
        ref_obj.get("name") or labels.get("tekton.dev/pipeline" if kind == "pipelinerun" else "tekton.dev/task") or name
    )
    outcome = OUTCOMES.get(state)
    created = parse_time(meta.get("creationTimestamp"))
    started = parse_time(status.get("startTime"))
    finished = (parse_time(status.get("completionTime")) or time) if outcome else None
    repository = _repository(params)
    revision = next((params[p] for p in REVISION_PARAMS if p in params), None)
    return [
        RunFact(
            ref=ServiceRef(repository=repository, fallback=str(labels.get("app.kubernetes.io/part-of") or pipeline)),
            kind="pipeline" if kind == "pipelinerun" else "task",
            source=SOURCE,
            run_key=f"{meta.get('namespace') or 'default'}/{kind}/{meta.get('uid') or name}",
            pipeline=pipeline,
            status="completed" if outcome else STATES[state],
            outcome=outcome,
            queued_at=created,
            started_at=started,
            finished_at=finished,
            duration_s=seconds_between(started, finished),
            queue_s=seconds_between(created, started),
            repository=repository,
            commit=revision if revision and is_sha(revision) else None,
        )
    ]
