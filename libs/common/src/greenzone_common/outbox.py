"""The transactional outbox: the only way a service publishes.

``Outbox.add`` writes the event row in the caller's session, i.e. in the same transaction as the state change it
announces. The relay (``relay.py``) publishes committed rows; nothing is published for a rolled-back transaction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.contracts.base import EventData


class Outbox:
    def __init__(self, table: Table, *, source: str) -> None:
        self.table = table
        self.source = source

    def row(self, event: EventData, *, event_id: uuid.UUID | None = None) -> dict[str, Any]:
        trace: dict[str, str] = {}
        propagate.inject(trace)  # the caller's trace continues through Kafka into the consumer
        return {
            "id": event_id or uuid.uuid4(),
            "topic": event.topic,
            "key": event.key(),
            "type": event.event_type,
            "source": self.source,
            "subject": event.key(),
            "time": datetime.now(UTC),
            "data": event.model_dump(mode="json"),
            "headers": trace,
        }

    async def add_cloudevent(
        self, session: AsyncSession, *, topic: str, type: str, subject: str, data: dict[str, Any]
    ) -> uuid.UUID:
        """Stage an event whose type is not Greenzone's own (a standard CDEvent on ``greenzone.cdevents``)."""
        trace: dict[str, str] = {}
        propagate.inject(trace)
        event_id = uuid.uuid4()
        context = data.get("context")
        if isinstance(context, dict) and context.get("id"):
            event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.source}/{context['id']}")
        row = {
            "id": event_id,
            "topic": topic,
            "key": subject,
            "type": type,
            "source": self.source,
            "subject": subject,
            "time": datetime.now(UTC),
            "data": data,
            "headers": trace,
        }
        await session.execute(insert(self.table), [row])
        return event_id

    async def add(self, session: AsyncSession, *events: EventData) -> list[uuid.UUID]:
        """Stage ``events`` in the current transaction; returns their CloudEvents ids."""
        rows = [self.row(e) for e in events]
        if rows:
            await session.execute(insert(self.table), rows)
        return [r["id"] for r in rows]
