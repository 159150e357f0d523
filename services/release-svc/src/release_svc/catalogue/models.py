from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from release_svc.db import Base


class Service(Base):
    """A configuration item of the catalogue."""

    __tablename__ = "services"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    repositories: Mapped[list[str]] = mapped_column(JSONB, default=list)
    artifacts: Mapped[list[str]] = mapped_column(JSONB, default=list)
    team: Mapped[str | None] = mapped_column(String(200))
    auto_registered: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
