from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import DateTime, String, Time, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from release_svc.db import Base


class Window(Base):
    """A recurring weekly deployment window, in local time of a named time zone."""

    __tablename__ = "windows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    environment: Mapped[str] = mapped_column(String(100), index=True)
    days: Mapped[list[str]] = mapped_column(JSONB)
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
