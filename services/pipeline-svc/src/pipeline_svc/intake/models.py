from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, LargeBinary, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from pipeline_svc.db import Base

#: The raw events ``facts.service.change_created_at`` looks up, as literal SQL: PostgreSQL uses a partial index only
#: for a query whose condition it can prove implies the index's, which a bound parameter would not let it do.
CHANGE_CREATED = "origin = 'cloudevents' AND event_type LIKE 'dev.cdevents.change.created.%'"


class RawEvent(Base):
    """Every accepted delivery, as received (the headers that matter and the exact body), for audit and replay.

    ``(origin, delivery_key)`` is unique: a redelivery (same ``X-GitHub-Delivery``, ``X-Gitlab-Event-UUID``, or
    CloudEvents ``(source, id)``) finds its row and changes nothing.
    """

    __tablename__ = "raw_events"
    __table_args__ = (
        UniqueConstraint("origin", "delivery_key"),
        # only the indexes a query uses, as small as it can use: every accepted event pays for each of them
        Index("ix_raw_events_change_created", "subject", postgresql_where=text(CHANGE_CREATED)),
        Index("ix_raw_events_received_at", "received_at", postgresql_using="brin"),  # appended in time order
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    origin: Mapped[str] = mapped_column(String(20))  # github | gitlab | cloudevents | junit | sarif | api
    delivery_key: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)  # the sending tool or CloudEvents source
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
