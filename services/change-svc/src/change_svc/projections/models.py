"""change-svc's own projections of other services' events: what the risk, the auto-approval, the schedule and the
completion from deployments are decided from. Upserts keyed by the fact's identity keep them idempotent and
order-tolerant (a later fact is never overwritten by an earlier one)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from change_svc.db import Base


class EnvironmentView(Base):
    __tablename__ = "environments"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    protected: Mapped[bool] = mapped_column(Boolean)
    production: Mapped[bool] = mapped_column(Boolean)
    defined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FreezeView(Base):
    __tablename__ = "freezes"

    freeze_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    environments: Mapped[list[str]] = mapped_column(JSONB, default=list)
    services: Mapped[list[str]] = mapped_column(JSONB, default=list)
    reason: Mapped[str] = mapped_column(String(2000), default="")
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TestResult(Base):
    """The latest result of a test suite for a service at a version and/or commit."""

    __test__ = False
    __tablename__ = "test_results"
    __table_args__ = (UniqueConstraint("service", "version", "commit", "suite", name="uq_test_results_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))  # "" when not reported
    commit: Mapped[str] = mapped_column(String(100))
    suite: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20))
    passed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ScanResult(Base):
    """The latest findings of a scanner for a service at a version and/or commit."""

    __tablename__ = "scan_results"
    __table_args__ = (UniqueConstraint("service", "version", "commit", "tool", name="uq_scan_results_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    commit: Mapped[str] = mapped_column(String(100))
    tool: Mapped[str] = mapped_column(String(200))
    critical: Mapped[int] = mapped_column(Integer)
    high: Mapped[int] = mapped_column(Integer)
    medium: Mapped[int] = mapped_column(Integer)
    low: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeploymentView(Base):
    """A deployment observed by pipeline-svc (one row per source deployment; its latest outcome)."""

    __tablename__ = "deployments"

    ref: Mapped[str] = mapped_column(String(300), primary_key=True)  # "<source>:<source id>"
    service: Mapped[str] = mapped_column(String(200), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    version: Mapped[str | None] = mapped_column(String(100))
    commit: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RollbackView(Base):
    __tablename__ = "rollbacks"

    ref: Mapped[str] = mapped_column(String(300), primary_key=True)
    service: Mapped[str] = mapped_column(String(200), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    version: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReleaseView(Base):
    """A release's version, services and changes, for matching observed deployments to changes."""

    __tablename__ = "releases"

    release_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(100), index=True)
    services: Mapped[list[str]] = mapped_column(JSONB, default=list)
    changes: Mapped[list[str]] = mapped_column(JSONB, default=list)
    state: Mapped[str] = mapped_column(String(30))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
