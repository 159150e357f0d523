from __future__ import annotations

from pydantic import BaseModel

from greenzone_common.contracts.common import Timestamp


class RunRead(BaseModel):
    id: str
    service: str
    kind: str
    pipeline: str
    run_id: str
    status: str
    outcome: str | None
    queued_at: Timestamp | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_s: float | None
    queue_s: float | None
    repository: str | None
    branch: str | None
    commit: str | None
    version: str | None
    url: str | None
    source: str


class DeploymentRead(BaseModel):
    id: str
    service: str
    environment: str
    version: str | None
    commit: str | None
    outcome: str
    at: Timestamp
    source: str
    source_id: str
    change_id: str | None
    url: str | None
    rolled_back: bool = False  # a rollback of the service and environment followed it


class EvidenceRead(BaseModel):
    id: str
    kind: str  # tests | scan
    service: str
    version: str | None
    commit: str | None
    suite: str | None = None
    tool: str | None = None
    outcome: str | None = None
    counts: dict[str, int] | None = None  # tests: passed, failed, skipped
    findings: dict[str, int] | None = None  # scan: critical, high, medium, low, note
    reported_at: Timestamp
    source: str
