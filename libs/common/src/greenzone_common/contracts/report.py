"""The release report, published by report-svc on ``greenzone.report`` when a release closes."""

from __future__ import annotations

from pydantic import Field

from greenzone_common.contracts.base import REPORT_TOPIC, EventData, event
from greenzone_common.contracts.common import EventPart, Id, Timestamp


class AssessmentComponents(EventPart):
    """The parts of the release assessment score, each from 0 to 1 (definitions in METRICS.md)."""

    C: float = Field(ge=0, le=1, description="Changes completed successfully.")
    D: float = Field(ge=0, le=1, description="Production deployments that succeeded and stayed.")
    G: float = Field(ge=0, le=1, description="Green-zone compliance of the production deployments.")
    Q: float = Field(ge=0, le=1, description="Services with passing tests and no critical/high finding.")
    S: float = Field(ge=0, le=1, description="Schedule: deployed by the deploy milestone.")
    E: float = Field(ge=0, le=1, description="Early life support without unresolved incidents.")


class Assessment(EventPart):
    """The release assessment: a score from 0 to 100 and the components it is made of."""

    score: int = Field(ge=0, le=100)
    components: AssessmentComponents


class ReleaseChanges(EventPart):
    """The ids of a release's changes, by what became of them."""

    implemented: list[str] = []
    failed: list[str] = []
    rolled_back: list[str] = []
    cancelled: list[str] = []
    pending: list[str] = []


@event("dev.greenzone.report.release.published.v1", topic=REPORT_TOPIC, key="release_id")
class ReleaseReportPublished(EventData):
    """The management report of a closed release was published."""

    release_id: Id
    name: str
    version: str
    services: list[str] = []
    changes: ReleaseChanges
    assessment: Assessment
    deployment_count: int = Field(default=0, ge=0, description="Production deployments of the release.")
    incident_count: int = Field(default=0, ge=0, description="Incidents linked to them.")
    report_url: str | None = Field(default=None, description="Where the full report is served.")
    generated_at: Timestamp
    revision: int = Field(
        default=1,
        ge=1,
        description="1 for the report generated when the release closed; each regeneration after a late fact "
        "(an incident, deployment, evidence or change outcome of the release arriving after it closed) adds 1.",
    )
