"""The local projection of release-svc's catalogue (``dev.greenzone.service.registered.v1``): which service a
repository or an artifact belongs to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pipeline_svc.db import Base


class CatalogueService(Base):
    __tablename__ = "catalogue_services"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    repositories: Mapped[list[Any]] = mapped_column(JSONB)
    artifacts: Mapped[list[Any]] = mapped_column(JSONB)
    team: Mapped[str | None] = mapped_column(String(200))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CatalogueKey(Base):
    """``(kind, key)`` → service; kind is ``repository`` or ``artifact``, key lower case."""

    __tablename__ = "catalogue_keys"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    service: Mapped[str] = mapped_column(String(200), index=True)
