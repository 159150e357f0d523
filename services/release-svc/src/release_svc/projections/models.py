"""Local projections of other services' events: the gate and early life support decide only from these."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from release_svc.db import Base


class ChangeView(Base):
    """A change request as change-svc's events describe it (or a draft the gate asked change-svc to create)."""

    __tablename__ = "changes"

    change_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[str | None] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(20))
    service: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(30))
    state_rank: Mapped[int] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(String(300))
    version: Mapped[str | None] = mapped_column(String(100))
    release_id: Mapped[str | None] = mapped_column(String(64))
    planned_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    planned_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    auto_created: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_changes_service_environment", "service", "environment"),)


class Deployment(Base):
    """A deployment of a service to an environment: recorded by a release, or observed by pipeline-svc."""

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    version: Mapped[str | None] = mapped_column(String(100))
    commit: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(100))
    source_id: Mapped[str] = mapped_column(String(300))
    change_id: Mapped[str | None] = mapped_column(String(64))
    release_id: Mapped[str | None] = mapped_column(String(64), index=True)
    decision_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("source", "source_id", name="uq_deployments_source_source_id"),
        Index("ix_deployments_service_environment", "service", "environment"),
    )


class Rollback(Base):
    __tablename__ = "rollbacks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service: Mapped[str] = mapped_column(String(200), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    version: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(100))
    release_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(2000), default="")


class TestReport(Base):
    __tablename__ = "test_reports"
    __test__ = False  # not a pytest class

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ce_id: Mapped[str] = mapped_column(String(100), unique=True)
    service: Mapped[str] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(100))
    commit: Mapped[str | None] = mapped_column(String(100))
    suite: Mapped[str | None] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20))
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_test_reports_service_version", "service", "version"),
        Index("ix_test_reports_service_commit", "service", "commit"),
    )


class ScanReport(Base):
    __tablename__ = "scan_reports"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ce_id: Mapped[str] = mapped_column(String(100), unique=True)
    service: Mapped[str] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(100))
    commit: Mapped[str | None] = mapped_column(String(100))
    tool: Mapped[str | None] = mapped_column(String(200))
    critical: Mapped[int] = mapped_column(Integer, default=0)
    high: Mapped[int] = mapped_column(Integer, default=0)
    medium: Mapped[int] = mapped_column(Integer, default=0)
    low: Mapped[int] = mapped_column(Integer, default=0)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_scan_reports_service_version", "service", "version"),
        Index("ix_scan_reports_service_commit", "service", "commit"),
    )


class Incident(Base):
    __tablename__ = "incidents"

    incident_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    service: Mapped[str] = mapped_column(String(200), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str | None] = mapped_column(String(50))
    version: Mapped[str | None] = mapped_column(String(100))
    detected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
