"""What a delivery tool told us, normalised: plain values the source mappers return and ``facts.service`` records.

The mappers in this package are pure (payload in, facts out); the service name is resolved later, against the
catalogue, from the :class:`ServiceRef` a fact carries.

The facts are slotted dataclasses, not frozen ones: nothing changes a fact after its mapper returns it, and a frozen
dataclass sets each field through ``object.__setattr__`` (a ``RunFact`` took 1.5 µs to build frozen and 0.3 µs
slotted, ``timeit``), once for every event of a CDEvents batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(slots=True)
class ServiceRef:
    """Everything a payload says about which service it concerns; ``facts.policy.resolve_service`` decides."""

    explicit: str | None = None  # a service named outright (POST /incidents, a CDEvents incident's service.id)
    repository: str | None = None  # "octo-org/api"
    artifact: str | None = None  # a package name, e.g. from a purl
    fallback: str | None = None  # a last resort (a pipeline's name) when nothing better is known


@dataclass(slots=True)
class RunFact:
    """A pipeline run (``kind="pipeline"``) or one of its builds: a job, a task, a check run, a commit status."""

    ref: ServiceRef
    kind: str  # pipeline | job | task | check_suite | check_run | status | build
    source: str
    run_key: str  # unique per source and kind
    pipeline: str
    status: str  # queued | running | completed
    outcome: str | None = None  # success | failure | cancel | error, once completed
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    queue_s: float | None = None
    repository: str | None = None
    branch: str | None = None
    commit: str | None = None
    version: str | None = None
    url: str | None = None


@dataclass(slots=True)
class DeploymentFact:
    ref: ServiceRef
    environment: str
    outcome: Literal["success", "failure"]
    at: datetime
    source: str
    source_id: str
    version: str | None = None
    commit: str | None = None
    change_id: str | None = None
    url: str | None = None


@dataclass(slots=True)
class RollbackFact:
    ref: ServiceRef
    environment: str
    at: datetime
    source: str
    source_id: str
    version: str | None = None
    commit: str | None = None


@dataclass(slots=True)
class PushedCommit:
    sha: str
    timestamp: datetime
    message: str | None = None
    author: str | None = None
    url: str | None = None


@dataclass(slots=True)
class PushFact:
    ref: ServiceRef
    repository: str
    branch: str
    default_branch: str | None
    pushed_at: datetime
    source: str
    source_id: str
    commits: tuple[PushedCommit, ...] = ()


@dataclass(slots=True)
class MergeFact:
    ref: ServiceRef
    repository: str
    change_id: str
    merged_at: datetime
    source: str
    number: str | None = None
    title: str | None = None
    started_at: datetime | None = None
    commit: str | None = None
    url: str | None = None
    # CDEvents: the start is the timestamp of the change.created with this subject id, when one was received
    created_subject: str | None = None


@dataclass(slots=True)
class ChangeOpenedFact:
    """A CDEvents ``change.created``: the start of the change merged later (or earlier: events cross)."""

    ref: ServiceRef
    subject_id: str
    at: datetime


@dataclass(slots=True)
class TestsFact:
    __test__ = False  # not a pytest test class

    ref: ServiceRef
    outcome: str
    reported_at: datetime
    source: str
    source_id: str
    version: str | None = None
    commit: str | None = None
    suite: str | None = None
    passed: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass(slots=True)
class ScanFact:
    ref: ServiceRef
    reported_at: datetime
    source: str
    source_id: str
    findings: dict[str, int] = field(default_factory=dict)  # critical, high, medium, low, note
    version: str | None = None
    commit: str | None = None
    tool: str | None = None


@dataclass(slots=True)
class ArtifactFact:
    ref: ServiceRef
    name: str
    version: str
    published_at: datetime
    source: str
    source_id: str
    digest: str | None = None
    commit: str | None = None
    purl: str | None = None


@dataclass(slots=True)
class IncidentFact:
    ref: ServiceRef
    action: Literal["detected", "resolved"]
    incident_key: str  # the incident's id in its source
    environment: str
    at: datetime
    source: str
    title: str | None = None
    severity: str | None = None
    version: str | None = None
    commit: str | None = None
    url: str | None = None


Fact = (
    RunFact
    | DeploymentFact
    | RollbackFact
    | PushFact
    | MergeFact
    | ChangeOpenedFact
    | TestsFact
    | ScanFact
    | ArtifactFact
    | IncidentFact
)
