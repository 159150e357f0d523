"""Events of release-svc, on ``greenzone.release``.

Release events are keyed by the release id. The catalogue events (services, environments, windows, freezes)
are keyed by the aggregate they define: the service or environment name, the window or freeze id. Gate
decisions are keyed by the service name, so a service's decisions stay in order.
"""

from __future__ import annotations

from datetime import time

from pydantic import Field

from greenzone_common.contracts.base import RELEASE_TOPIC, EventData, event
from greenzone_common.contracts.common import (
    DeploymentOutcome,
    EventPart,
    GateDecision,
    GateReason,
    Id,
    ReleaseState,
    Timestamp,
    Weekday,
)

# --- the catalogue: services, environments, deployment windows and freezes ---


@event("dev.greenzone.service.registered.v1", topic=RELEASE_TOPIC, key="name")
class ServiceRegistered(EventData):
    """A service (configuration item) was added to the catalogue, or its entry changed."""

    name: Id
    repositories: list[str] = Field(default=[], description="e.g. octo-org/api")
    artifacts: list[str] = []
    team: str | None = None
    auto_registered: bool = Field(
        default=False,
        description="Registered because CI events named a repository or artifact not yet known.",
    )
    registered_at: Timestamp


@event("dev.greenzone.environment.defined.v1", topic=RELEASE_TOPIC, key="name")
class EnvironmentDefined(EventData):
    """An environment was defined or redefined; rank gives the promotion order (lowest first)."""

    name: Id
    rank: int
    protected: bool = False
    production: bool = False
    defined_at: Timestamp


@event("dev.greenzone.window.defined.v1", topic=RELEASE_TOPIC, key="window_id")
class WindowDefined(EventData):
    """A recurring weekly deployment window was defined for an environment."""

    window_id: Id
    environment: Id
    days: list[Weekday]
    start: time = Field(description="Local time of day in the window's time zone.")
    end: time
    timezone: str = Field(description="An IANA time zone name, e.g. Europe/London.")
    defined_at: Timestamp


@event("dev.greenzone.window.removed.v1", topic=RELEASE_TOPIC, key="window_id")
class WindowRemoved(EventData):
    """A deployment window was removed; its environment is open at all times once it has no window left."""

    window_id: Id
    environment: Id
    removed_by: str | None = None
    removed_at: Timestamp


@event("dev.greenzone.freeze.scheduled.v1", topic=RELEASE_TOPIC, key="freeze_id")
class FreezeScheduled(EventData):
    """A freeze (blackout period) was scheduled."""

    freeze_id: Id
    name: str
    start: Timestamp
    end: Timestamp
    environments: list[str]
    services: list[str] = Field(default=[], description="Empty means every service.")
    reason: str = ""
    scheduled_by: str | None = None
    scheduled_at: Timestamp


@event("dev.greenzone.freeze.lifted.v1", topic=RELEASE_TOPIC, key="freeze_id")
class FreezeLifted(EventData):
    """A freeze was lifted (deleted) before or during its period."""

    freeze_id: Id
    name: str | None = None
    lifted_by: str | None = None
    lifted_at: Timestamp


# --- releases ---


class Milestones(EventPart):
    """When a release is planned to reach each milestone."""

    build: Timestamp | None = None
    deploy: Timestamp | None = None
    els_end: Timestamp | None = None
    closure: Timestamp | None = None


class ReleaseEventData(EventData):
    """Fields every release event carries: the release as it stands after the event."""

    release_id: Id
    name: str
    version: str
    services: list[str] = []
    changes: list[str] = Field(default=[], description="The ids of the changes the release bundles.")
    state: ReleaseState


@event("dev.greenzone.release.planned.v1", topic=RELEASE_TOPIC, key="release_id")
class ReleasePlanned(ReleaseEventData):
    """A release was planned."""

    milestones: Milestones = Field(default_factory=Milestones)
    notify: list[str] = Field(default=[], description="Webhook URLs told about the release.")
    depends_on: list[str] = Field(default=[], description="Ids of releases this one depends on.")
    planned_by: str | None = None
    planned_at: Timestamp


@event("dev.greenzone.release.changed.v1", topic=RELEASE_TOPIC, key="release_id")
class ReleaseChanged(ReleaseEventData):
    """A release's plan changed, e.g. a change was added to it."""

    added_changes: list[str] = []
    removed_changes: list[str] = []
    milestones: Milestones | None = None
    changed_by: str | None = None
    changed_at: Timestamp


@event("dev.greenzone.release.deployment.requested.v1", topic=RELEASE_TOPIC, key="release_id")
class ReleaseDeploymentRequested(ReleaseEventData):
    """A deployment of a release to an environment was requested and allowed by the gate."""

    environment: Id
    commit: str | None = None
    decision_id: str | None = Field(default=None, description="The gate decision that allowed it.")
    requested_by: str | None = None
    requested_at: Timestamp


@event("dev.greenzone.release.deployed.v1", topic=RELEASE_TOPIC, key="release_id")
class ReleaseDeployed(ReleaseEventData):
    """A deployment of a release to an environment finished, successfully or not."""

    environment: Id
    outcome: DeploymentOutcome
    commit: str | None = None
    deployment_id: str | None = None
    deployment_ids: list[str] = Field(default=[], description="One deployment per service of the release.")
    production: bool = Field(default=False, description="Whether the environment is a production one.")
    source: str = Field(default="release-svc", description="release-svc, or the tool whose deployment matched.")
    decision_id: str | None = None
    deployed_by: str | None = None
    deployed_at: Timestamp


@event("dev.greenzone.release.rolledback.v1", topic=RELEASE_TOPIC, key="release_id")
class ReleaseRolledBack(ReleaseEventData):
    """A release was rolled back in an environment."""

    environment: Id
    reason: str = ""
    rolled_back_by: str | None = None
    rolled_back_at: Timestamp


@event("dev.greenzone.release.cancelled.v1", topic=RELEASE_TOPIC, key="release_id")
class ReleaseCancelled(ReleaseEventData):
    """A release was cancelled."""

    reason: str = ""
    cancelled_by: str | None = None
    cancelled_at: Timestamp


@event("dev.greenzone.release.els.started.v1", topic=RELEASE_TOPIC, key="release_id")
class ReleaseEarlyLifeSupportStarted(ReleaseEventData):
    """A release deployed to production entered early life support."""

    environment: Id
    started_at: Timestamp
    ends_at: Timestamp


@event("dev.greenzone.release.closed.v1", topic=RELEASE_TOPIC, key="release_id")
class ReleaseClosed(ReleaseEventData):
    """A release was closed: early life support is over (or was ended early); its report follows."""

    closed_by: str | None = Field(default=None, description="None when early life support ended by itself.")
    closed_at: Timestamp


# --- the gate ---


@event("dev.greenzone.gate.evaluated.v1", topic=RELEASE_TOPIC, key="service")
class GateEvaluated(EventData):
    """The gate decided whether a service at a version may be deployed to an environment now."""

    decision_id: Id
    service: Id
    environment: Id
    version: str | None = None
    commit: str | None = None
    decision: GateDecision
    reasons: list[GateReason] = []
    change_id: str | None = Field(
        default=None, description="The change that allowed it, or the draft change created for a denial."
    )
    change_auto_created: bool = Field(
        default=False,
        description=(
            "True when change_id is new: the deployment was denied on a protected environment with no change, "
            "and change-svc should create a draft normal change with this id (service, environment, version, "
            "commit and requested_by from this event)."
        ),
    )
    protected: bool = Field(default=False, description="Whether the environment is protected.")
    requested_by: str | None = None
    evaluated_at: Timestamp
