"""Intake use cases: keep the raw delivery (deduplicated), then record the facts it carries — in one transaction.

Nothing here checks signatures or parses bodies: routes do that first, so nothing unauthenticated or malformed
ever reaches the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from greenzone_common.batching import Coalescer, one_per
from greenzone_common.bulk import BulkInsert
from greenzone_common.db import unit_of_work
from greenzone_common.ids import random_uuid
from greenzone_common.outbox import Outbox
from pipeline_svc.facts import service as facts
from pipeline_svc.facts.policy import parse_time
from pipeline_svc.intake.models import RawEvent
from pipeline_svc.sources import cdevents, tekton
from pipeline_svc.sources.cloudevents import IncomingEvent
from pipeline_svc.sources.facts import ArtifactFact, DeploymentFact, Fact, MergeFact, PushFact, ScanFact, TestsFact


@dataclass
class Delivery:
    """One raw event to keep, and the facts it carries."""

    origin: str
    delivery_key: str
    event_type: str
    headers: dict[str, str]
    body: bytes
    subject: str | None = None
    source: str | None = None
    occurred_at: datetime | None = None
    facts: list[Fact] = field(default_factory=list)
    id: uuid.UUID = field(default_factory=random_uuid)


@dataclass
class Outcome:
    stored: list[Delivery]
    duplicates: list[Delivery]
    recorded: facts.Recorded


_RAW: Any = RawEvent.__table__
_RAW_COLUMNS = ("id", "origin", "delivery_key", "event_type", "subject", "source", "occurred_at", "headers", "body")
#: raw events not seen before (``(origin, delivery_key)`` is unique), one statement over arrays whatever the count
#: (the origin and headers of the events of one POST /events, the same in each, sent once)
_INSERT_RAW = BulkInsert(_RAW, _RAW_COLUMNS, "ON CONFLICT DO NOTHING", returning=[_RAW.c.id])


def kept_headers(headers: Mapping[str, str], names: Sequence[str], prefixes: Sequence[str] = ()) -> dict[str, str]:
    """The headers worth keeping for audit and replay (never a secret such as X-Gitlab-Token)."""
    return {k: v for k, v in headers.items() if k in names or any(k.startswith(p) for p in prefixes)}


async def _keep(session: AsyncSession, deliveries: Sequence[Delivery]) -> tuple[list[Delivery], list[Delivery]]:
    """Store the raw deliveries not seen before, in one statement: (stored, repeated), each in the given order."""
    unique: dict[tuple[str, str], Delivery] = {}
    repeated: list[Delivery] = []
    for d in deliveries:
        key = (d.origin, d.delivery_key)
        if key in unique:
            repeated.append(d)
        else:
            unique[key] = d
    if not unique:
        return [], repeated
    rows = [
        {
            "id": d.id,
            "origin": d.origin,
            "delivery_key": d.delivery_key,
            "event_type": d.event_type,
            "subject": d.subject,
            "source": d.source,
            "occurred_at": d.occurred_at,
            "headers": d.headers,
            "body": d.body,
        }
        for d in unique.values()
    ]
    new_ids = {row.id for row in await _INSERT_RAW.execute(session, rows)}
    stored = [d for d in unique.values() if d.id in new_ids]
    repeated += [d for d in unique.values() if d.id not in new_ids]
    return stored, repeated


def _sourced(delivery: Delivery) -> list[facts.Sourced]:
    return [facts.Sourced(f, delivery.id) for f in delivery.facts]


async def accept(session: AsyncSession, outbox: Outbox, deliveries: Sequence[Delivery]) -> Outcome:
    """Store the deliveries not seen before and record their facts; a repeated one changes nothing."""
    stored, repeated = await _keep(session, deliveries)
    recorded = await facts.record(session, outbox, [s for d in stored for s in _sourced(d)])
    return Outcome(stored, repeated, recorded)


#: Facts whose recording only inserts what is not recorded yet, with no other effect: recording those of several
#: deliveries in one statement per table gives each delivery what recording them one after the other would (the
#: first to tell a fact records it). Runs merge into what is recorded, rollbacks mark deployments, incidents and
#: CDEvents change.created update: deliveries carrying those are recorded one at a time, in order.
INSERT_ONLY = (DeploymentFact, PushFact, MergeFact, TestsFact, ScanFact, ArtifactFact)


def _insert_only(delivery: Delivery) -> bool:
    return all(isinstance(f, INSERT_ONLY) for f in delivery.facts)


async def accept_each(
    session: AsyncSession, outbox: Outbox, deliveries: Sequence[tuple[Delivery, otel_context.Context]]
) -> list[Outcome]:
    """Accept independent deliveries in one transaction, each with its own outcome and its outbox rows in its own
    trace, exactly as ``accept`` would one by one, in fewer statements: the raw events, the catalogue look-up and
    the outbox rows of them all in one each, and the facts of consecutive deliveries that only insert
    (``INSERT_ONLY``) in one per table; the others are recorded delivery by delivery, in order."""
    stored, _ = await _keep(session, [d for d, _ in deliveries])
    new = {d.id for d in stored}
    everything = [s for d in stored for s in _sourced(d)]
    catalogue = await facts.catalogue_lookup(session, (s.fact.ref for s in everything)) if everything else None
    rows: list[dict[str, Any]] = []
    outcomes: dict[uuid.UUID, Outcome] = {}
    group: list[tuple[Delivery, otel_context.Context]] = []

    async def record_group() -> None:
        if not group:
            return
        traces = {}
        for delivery, trace in group:
            token = otel_context.attach(trace)
            try:
                traces[delivery.id] = outbox.trace()
            finally:
                otel_context.detach(token)
        recorded = await facts.record(
            session,
            outbox,
            [s for d, _ in group for s in _sourced(d)],
            catalogue=catalogue,
            outbox_rows=rows,
            traces=traces,
        )
        for delivery, _ in group:
            events = recorded.staging.of(delivery.id)
            outcomes[delivery.id] = Outcome([delivery], [], facts.Recorded(new=len(events), events=events))
        group.clear()

    for delivery, trace in deliveries:
        if delivery.id not in new:  # seen before, or twice in this batch
            outcomes[delivery.id] = Outcome([], [delivery], facts.Recorded())
        elif _insert_only(delivery):
            group.append((delivery, trace))
        else:
            await record_group()  # what came before it, first
            token = otel_context.attach(trace)
            try:
                recorded = await facts.record(
                    session, outbox, _sourced(delivery), catalogue=catalogue, outbox_rows=rows
                )
            finally:
                otel_context.detach(token)
            outcomes[delivery.id] = Outcome([delivery], [], recorded)
    await record_group()
    await facts.stage(session, outbox, rows)
    return [outcomes[d.id] for d, _ in deliveries]


class DeliveryBatches:
    """Group commit for single deliveries (a webhook each, ``greenzone_common.batching``): the deliveries in flight
    accepted together in one transaction (``accept_each``), so that a burst pays one BEGIN and one COMMIT (one WAL
    flush) and a few statements per batch instead of per webhook. Each is accepted exactly as on its own, with its
    own outcome, and its outbox rows carry its own request's trace. A batch that fails is rolled back whole and each
    delivery accepted again in a transaction of its own. One per session factory (per process and database)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.accept: Coalescer[tuple[Delivery, otel_context.Context], Outcome] = Coalescer(self._accept)

    @classmethod
    def of(cls, sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> DeliveryBatches:
        return one_per(sessions, cls, lambda: cls(sessions, outbox))

    async def one(self, delivery: Delivery) -> Outcome:
        """Accept ``delivery`` with the others in flight; its outcome once the batch has committed."""
        return await self.accept((delivery, otel_context.get_current()))

    async def _accept(self, items: list[tuple[Delivery, otel_context.Context]]) -> list[Outcome]:
        async with unit_of_work(self.sessions) as session:
            return await accept_each(session, self.outbox, items)


class RejectedEvent(ValueError):
    """A CloudEvent this service will not take: ``loc`` names the failing field."""

    def __init__(self, loc: list[Any], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def delivery_of(event: IncomingEvent, headers: dict[str, str]) -> Delivery:
    """Validate one CloudEvent (CDEvents against its schema, Tekton by type) and map it to facts."""
    loc = list(event.loc)
    data = event.data
    if event.type.startswith(cdevents.PREFIX):
        try:
            type_name = cdevents.validate(data)
        except cdevents.InvalidCDEvent as exc:
            path = [p for p in exc.field.split(".") if p]
            raise RejectedEvent([*loc, "data", *path], str(exc)) from exc
        if type_name != event.type:
            raise RejectedEvent(
                [*loc, "type"], f"type {event.type!r} differs from the CDEvent's context.type {type_name!r}"
            )
        subject: str | None = str(data["subject"]["id"])
        occurred = parse_time(data["context"].get("timestamp"))
        mapped = cdevents.map_event(data, at=occurred)
    elif event.type.startswith(tekton.PREFIX):
        try:
            tekton.parse_type(event.type)
        except tekton.UnknownTektonType as exc:
            raise RejectedEvent([*loc, "type"], str(exc)) from exc
        if not isinstance(data, dict):
            raise RejectedEvent([*loc, "data"], "Tekton event data must be a JSON object")
        subject = event.subject
        mapped = tekton.map_event(event.type, data, event.time)
        occurred = event.time
    else:
        raise RejectedEvent(
            [*loc, "type"],
            f"type {event.type!r} is neither a CDEvent (dev.cdevents.*) nor a Tekton event (dev.tekton.event.*)",
        )
    body = to_json({**event.attributes, "data": data}, fallback=str)  # as json.dumps would, in a third of the time
    return Delivery(
        origin="cloudevents",
        delivery_key=f"{event.source}\n{event.id}",
        event_type=event.type,
        headers=headers,
        body=body,
        subject=subject,
        source=event.source,
        occurred_at=occurred,
        facts=list(mapped),
    )
