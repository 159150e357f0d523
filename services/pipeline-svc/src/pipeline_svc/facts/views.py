"""ORM rows → API schemas."""

from __future__ import annotations

from pipeline_svc.facts.models import Deployment, Evidence, Run
from pipeline_svc.facts.schemas import DeploymentRead, EvidenceRead, RunRead


def run_read(r: Run) -> RunRead:
    return RunRead(
        id=str(r.id),
        service=r.service,
        kind=r.kind,
        pipeline=r.pipeline,
        run_id=r.run_key,
        status=r.status,
        outcome=r.outcome,
        queued_at=r.queued_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        duration_s=r.duration_s,
        queue_s=r.queue_s,
        repository=r.repository,
        branch=r.branch,
        commit=r.commit,
        version=r.version,
        url=r.url,
        source=r.source,
    )


def deployment_read(d: Deployment) -> DeploymentRead:
    return DeploymentRead(
        id=str(d.id),
        service=d.service,
        environment=d.environment,
        version=d.version,
        commit=d.commit,
        outcome=d.outcome,
        at=d.at,
        source=d.source,
        source_id=d.source_id,
        change_id=d.change_id,
        url=d.url,
        rolled_back=bool(d.rolled_back),
    )


def evidence_read(e: Evidence) -> EvidenceRead:
    if e.kind == "tests":
        return EvidenceRead(
            id=str(e.id),
            kind="tests",
            service=e.service,
            version=e.version,
            commit=e.commit,
            suite=e.name,
            outcome=e.outcome,
            counts={"passed": e.passed, "failed": e.failed, "skipped": e.skipped},
            reported_at=e.reported_at,
            source=e.source,
        )
    return EvidenceRead(
        id=str(e.id),
        kind="scan",
        service=e.service,
        version=e.version,
        commit=e.commit,
        tool=e.name,
        findings={"critical": e.critical, "high": e.high, "medium": e.medium, "low": e.low, "note": e.note},
        reported_at=e.reported_at,
        source=e.source,
    )
