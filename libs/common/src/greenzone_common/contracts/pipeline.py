"""Facts pipeline-svc normalised from CI/CD tools, on ``greenzone.pipeline`` and keyed by the service name.

``source`` names where a fact came from (``github``, ``gitlab``, ``cdevents``, ``tekton``, ``api`` …); it is
a plain string because new tools keep arriving, and a ``v1`` consumer must not reject them.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from greenzone_common.contracts.base import PIPELINE_TOPIC, EventData, event
from greenzone_common.contracts.common import (
    Commit,
    DeploymentOutcome,
    FindingsBySeverity,
    Id,
    RunOutcome,
    TestCounts,
    Timestamp,
)


@event("dev.greenzone.pipeline.run.finished.v1", topic=PIPELINE_TOPIC, key="service")
class PipelineRunFinished(EventData):
    """A pipeline (workflow) run finished."""

    service: Id
    pipeline: str
    run_id: Id
    outcome: RunOutcome
    queued_at: Timestamp | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp
    repository: str | None = None
    branch: str | None = None
    commit: str | None = None
    version: str | None = None
    url: str | None = None
    source: str
    duration_s: float | None = Field(default=None, ge=0, description="Running time in seconds, where known.")
    queue_s: float | None = Field(default=None, ge=0, description="Time queued before running, where known.")


@event("dev.greenzone.pipeline.tests.reported.v1", topic=PIPELINE_TOPIC, key="service")
class TestsReported(EventData):
    """A test suite's result was reported for a version or commit of a service."""

    __test__: ClassVar[bool] = False  # not a pytest test class, whatever its name

    service: Id
    version: str | None = None
    commit: str | None = None
    suite: str | None = None
    counts: TestCounts
    outcome: RunOutcome
    reported_at: Timestamp
    source: str | None = None


@event("dev.greenzone.pipeline.scan.reported.v1", topic=PIPELINE_TOPIC, key="service")
class ScanReported(EventData):
    """A security scan's findings were reported for a version or commit of a service."""

    service: Id
    version: str | None = None
    commit: str | None = None
    tool: str | None = Field(default=None, description="The scanner, e.g. CodeQL, Semgrep, Trivy.")
    findings: FindingsBySeverity
    reported_at: Timestamp
    source: str | None = None


@event("dev.greenzone.pipeline.artifact.published.v1", topic=PIPELINE_TOPIC, key="service")
class ArtifactPublished(EventData):
    """An artifact of a service was published."""

    service: Id
    name: str
    version: str
    digest: str | None = None
    commit: str | None = None
    purl: str | None = None
    published_at: Timestamp
    source: str | None = None


@event("dev.greenzone.pipeline.commits.pushed.v1", topic=PIPELINE_TOPIC, key="service")
class CommitsPushed(EventData):
    """Commits were pushed to a branch of a service's repository."""

    service: Id
    repository: str
    branch: str
    default_branch: str | None = Field(
        default=None, description="The repository's default branch, when the source said."
    )
    commits: list[Commit] = []
    pushed_at: Timestamp
    source: str

    @property
    def on_default_branch(self) -> bool:
        """Whether the push went to the default branch: only those commits count for lead time."""
        return self.default_branch is not None and self.branch == self.default_branch


@event("dev.greenzone.pipeline.change.merged.v1", topic=PIPELINE_TOPIC, key="service")
class CodeChangeMerged(EventData):
    """A code change (pull or merge request; a CDEvents change) was merged."""

    service: Id
    repository: str
    change_id: Id = Field(description="The id of the pull or merge request, not of a Greenzone change.")
    number: str | None = None
    title: str | None = None
    started_at: Timestamp | None = Field(default=None, description="When the pull or merge request was opened.")
    merged_at: Timestamp
    commit: str | None = Field(default=None, description="The merge commit.")
    url: str | None = None
    source: str


@event("dev.greenzone.pipeline.deployment.observed.v1", topic=PIPELINE_TOPIC, key="service")
class DeploymentObserved(EventData):
    """A tool reported that a service was deployed to an environment, successfully or not."""

    service: Id
    environment: Id
    version: str | None = None
    commit: str | None = None
    outcome: DeploymentOutcome
    at: Timestamp = Field(description="When the outcome happened.")
    source: str
    source_id: str = Field(description="The deployment's id in the source, to recognise the same one again.")
    change_id: str | None = Field(default=None, description="The Greenzone change the deployment names, if any.")
    url: str | None = None


@event("dev.greenzone.pipeline.rollback.observed.v1", topic=PIPELINE_TOPIC, key="service")
class RollbackObserved(EventData):
    """A tool reported that a service was rolled back in an environment."""

    service: Id
    environment: Id
    version: str | None = Field(default=None, description="The version rolled back to, when known.")
    commit: str | None = None
    at: Timestamp
    source: str | None = None
    source_id: str | None = None


@event("dev.greenzone.pipeline.incident.detected.v1", topic=PIPELINE_TOPIC, key="service")
class IncidentDetected(EventData):
    """An incident was detected (or reported) on a service in an environment."""

    incident_id: Id
    service: Id
    environment: Id
    title: str | None = None
    severity: str | None = Field(default=None, description="As the source says, e.g. critical, high.")
    version: str | None = None
    commit: str | None = None
    at: Timestamp
    source: str | None = None
    url: str | None = None


@event("dev.greenzone.pipeline.incident.resolved.v1", topic=PIPELINE_TOPIC, key="service")
class IncidentResolved(EventData):
    """An incident was resolved."""

    incident_id: Id
    service: Id
    environment: Id
    severity: str | None = None
    version: str | None = None
    commit: str | None = None
    at: Timestamp
    source: str | None = None
