"""Incidents reported through the API (teams without an incident tool). Tools' incidents arrive as CDEvents and
go through the same ``facts.service.apply_incident``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.auth import Principal
from greenzone_common.contracts import CDEVENTS_TOPIC
from greenzone_common.outbox import Outbox
from pipeline_svc.facts import service as facts
from pipeline_svc.facts.models import Incident
from pipeline_svc.facts.policy import normalise_environment
from pipeline_svc.incidents.schemas import IncidentCreate, IncidentRead, IncidentResolve
from pipeline_svc.sources.facts import IncidentFact, ServiceRef

SOURCE = "api"


class IncidentNotFound(LookupError):
    pass


class AlreadyResolved(RuntimeError):
    pass


async def _stage(session: AsyncSession, outbox: Outbox, fact: IncidentFact, by: Principal) -> Incident:
    cloud: list[tuple[str, str, dict[str, object]]] = []
    incident, events = await facts.apply_incident(
        session, facts.Sourced(fact, None), fact.ref.explicit or "unknown", cloud, reported_by=by.sub
    )
    assert incident is not None
    if events:
        await outbox.add(session, *events)
    for type_name, subject, data in cloud:
        await outbox.add_cloudevent(session, topic=CDEVENTS_TOPIC, type=type_name, subject=subject, data=data)
    return incident


async def report(session: AsyncSession, outbox: Outbox, data: IncidentCreate, by: Principal) -> Incident:
    fact = IncidentFact(
        ref=ServiceRef(explicit=data.service),
        action="detected",
        incident_key=str(uuid.uuid4()),
        environment=normalise_environment(data.environment),
        at=data.detected_at or datetime.now(UTC),
        source=SOURCE,
        title=data.title,
        severity=data.severity.lower(),
        version=data.version,
        commit=data.commit,
        url=data.url,
    )
    return await _stage(session, outbox, fact, by)


async def resolve(
    session: AsyncSession, outbox: Outbox, incident_id: str, data: IncidentResolve, by: Principal
) -> Incident:
    incident = await session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise IncidentNotFound(incident_id)
    if incident.resolved_at is not None:
        raise AlreadyResolved(incident_id)
    at = data.resolved_at or datetime.now(UTC)
    fact = IncidentFact(
        ref=ServiceRef(explicit=incident.service),
        action="resolved",
        incident_key=incident.source_key,
        environment=incident.environment,
        at=at,
        source=incident.source,
    )
    return await _stage(session, outbox, fact, by)


def to_read(i: Incident) -> IncidentRead:
    return IncidentRead(
        id=i.id,
        service=i.service,
        environment=i.environment,
        title=i.title,
        severity=i.severity,
        version=i.version,
        commit=i.commit,
        detected_at=i.detected_at,
        resolved_at=i.resolved_at,
        state="resolved" if i.resolved_at else "open",
        source=i.source,
        url=i.url,
        reported_by=i.reported_by,
    )
