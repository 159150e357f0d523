"""The heartbeat every service publishes on ``greenzone.platform``, keyed by the service name.

report-svc builds platform health (outbox backlog, consumer lag, dead-letter counts) from these.
"""

from __future__ import annotations

from pydantic import Field

from greenzone_common.contracts.base import PLATFORM_TOPIC, EventData, event
from greenzone_common.contracts.common import Id, Timestamp


@event("dev.greenzone.platform.heartbeat.v1", topic=PLATFORM_TOPIC, key="service")
class PlatformHeartbeatSent(EventData):
    """A service reported the health of its event plumbing."""

    service: Id
    instance: str | None = Field(default=None, description="The process or pod that sent it.")
    outbox_backlog: int = Field(ge=0, description="Outbox rows not yet published.")
    oldest_unpublished_age_seconds: float | None = Field(
        default=None, ge=0, description="Age of the oldest unpublished outbox row; None when there is none."
    )
    dlq_counts: dict[str, int] = Field(default={}, description="Messages sent to a dead-letter topic, by topic.")
    consumer_lag: dict[str, int] = Field(default={}, description="Messages not yet consumed, by consumer group.")
    at: Timestamp
