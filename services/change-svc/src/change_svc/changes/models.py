from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, Sequence, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from change_svc.db import SCHEMA, Base

change_number_seq = Sequence("change_number_seq", schema=SCHEMA, metadata=Base.metadata)


class Change(Base):
    __tablename__ = "changes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[int] = mapped_column(
        Integer, change_number_seq, server_default=change_number_seq.next_value(), unique=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(20))
    service: Mapped[str] = mapped_column(String(200), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(30), index=True)
    outcome: Mapped[str | None] = mapped_column(String(30))
    requested_by: Mapped[str] = mapped_column(String(200))
    risk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    required_approvals: Mapped[int] = mapped_column(Integer)
    auto_approved: Mapped[bool] = mapped_column(default=False)
    planned_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    planned_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    template_id: Mapped[str | None] = mapped_column(String(36))
    release_id: Mapped[str | None] = mapped_column(String(36))
    version: Mapped[str | None] = mapped_column(String(100))
    commits: Mapped[list[str]] = mapped_column(JSONB, default=list)
    review_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def display_number(self) -> str:
        return f"CHG-{self.number:06d}"
