from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from release_svc.db import Base


class Release(Base):
    __tablename__ = "releases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100), index=True)
    services: Mapped[list[str]] = mapped_column(JSONB)
    changes: Mapped[list[str]] = mapped_column(JSONB, default=list)
    milestones: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    notify: Mapped[list[str]] = mapped_column(JSONB, default=list)
    notify_secret: Mapped[str] = mapped_column(String(100))
    depends_on: Mapped[list[str]] = mapped_column(JSONB, default=list)
    state: Mapped[str] = mapped_column(String(30), index=True)
    els_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    els_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
