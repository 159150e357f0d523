from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from release_svc.db import Base


class GateDecisionRecord(Base):
    """Every gate decision, as returned and as published."""

    __tablename__ = "gate_decisions"

    decision_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    version: Mapped[str | None] = mapped_column(String(100))
    commit: Mapped[str | None] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(10))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    change_id: Mapped[str | None] = mapped_column(String(64))
    change_auto_created: Mapped[bool] = mapped_column(default=False)
    requested_by: Mapped[str | None] = mapped_column(String(200))
    evaluated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_gate_decisions_service_evaluated_at", "service", "evaluated_at"),)
