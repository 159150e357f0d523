"""The facts report-svc keeps from the other services' events, the raw material of every figure.

Each handler writes a fact with an idempotent, commutative upsert (a natural key; ``least``/``greatest`` or the
latest snapshot by its own timestamp), so the tables are the same whatever order the events arrived in, and
however often. Figures are computed from these tables by ``report_svc.metrics.formulas``.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, LargeBinary, SmallInteger, String, Time, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from report_svc.db import Base


class DeploymentReport(Base):
    """One source's report of a deployment outcome (merged into deployments when figures are computed)."""

    __tablename__ = "deployment_reports"
    __table_args__ = (Index("ix_deployment_reports_target", "service", "environment", "at"),)

    report_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(20))
    commit: Mapped[str | None] = mapped_column(String(100))
    version: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(50))
    change_id: Mapped[str | None] = mapped_column(String(100))
    release_id: Mapped[str | None] = mapped_column(String(100))


class RollbackFact(Base):
    __tablename__ = "rollbacks"
    __table_args__ = (Index("ix_rollbacks_target", "service", "environment", "at"),)

    rollback_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[str | None] = mapped_column(String(100))
    release_id: Mapped[str | None] = mapped_column(String(100))


class IncidentFact(Base):
    """An incident: start = earliest detection, end = earliest resolution."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_target", "service", "environment"),)

    incident_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(500))
    severity: Mapped[str | None] = mapped_column(String(50))
    version: Mapped[str | None] = mapped_column(String(100))
    commit: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CommitRecord(Base):
    """A change for lead time: a commit pushed to the default branch, or a merged CDEvents change."""

    __tablename__ = "commits"

    service: Mapped[str] = mapped_column(String(200), primary_key=True)
    commit_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    sha: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pushed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReleaseView(Base):
    """A release as its latest event (by the event's own time) describes it, plus every milestone reached."""

    __tablename__ = "releases"

    release_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    services: Mapped[list[str]] = mapped_column(JSONB)
    changes: Mapped[list[str]] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(String(30))
    snapshot_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    milestones: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    milestones_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    planned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    els_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    els_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GateDecisionRecord(Base):
    __tablename__ = "gate_decisions"
    __table_args__ = (Index("ix_gate_decisions_target", "service", "environment", "evaluated_at"),)

    decision_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    version: Mapped[str | None] = mapped_column(String(100))
    commit: Mapped[str | None] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(10))
    reasons: Mapped[list[str]] = mapped_column(JSONB)
    change_id: Mapped[str | None] = mapped_column(String(100))
    evaluated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TestEvidence(Base):
    __tablename__ = "test_evidence"
    __test__ = False
    __table_args__ = (Index("ix_test_evidence_service", "service", "version"),)

    evidence_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(100))
    commit: Mapped[str | None] = mapped_column(String(100))
    suite: Mapped[str | None] = mapped_column(String(200))
    passed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ScanEvidence(Base):
    __tablename__ = "scan_evidence"
    __table_args__ = (Index("ix_scan_evidence_service", "service", "version"),)

    evidence_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(100))
    commit: Mapped[str | None] = mapped_column(String(100))
    tool: Mapped[str | None] = mapped_column(String(100))
    critical: Mapped[int] = mapped_column(Integer)
    high: Mapped[int] = mapped_column(Integer)
    medium: Mapped[int] = mapped_column(Integer)
    low: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PipelineRun(Base):
    __tablename__ = "pipeline_runs"
    __table_args__ = (Index("ix_pipeline_runs_finished", "finished_at"),)

    run_key: Mapped[str] = mapped_column(String(500), primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    pipeline: Mapped[str] = mapped_column(String(300))
    run_id: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column()
    queue_s: Mapped[float | None] = mapped_column()
    commit: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(50))


class CatalogueService(Base):
    __tablename__ = "catalogue_services"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    team: Mapped[str | None] = mapped_column(String(200), index=True)
    repositories: Mapped[list[str]] = mapped_column(JSONB)
    artifacts: Mapped[list[str]] = mapped_column(JSONB)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EnvironmentView(Base):
    __tablename__ = "environments"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    protected: Mapped[bool] = mapped_column(Boolean)
    production: Mapped[bool] = mapped_column(Boolean)
    defined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WindowView(Base):
    __tablename__ = "windows"

    window_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    environment: Mapped[str] = mapped_column(String(100))
    days: Mapped[list[str]] = mapped_column(JSONB)
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(String(100))
    defined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FreezeView(Base):
    __tablename__ = "freezes"

    freeze_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    environments: Mapped[list[str]] = mapped_column(JSONB)
    services: Mapped[list[str]] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(String(1000))
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Heartbeat(Base):
    """The latest heartbeat of each service instance."""

    __tablename__ = "heartbeats"

    service: Mapped[str] = mapped_column(String(200), primary_key=True)
    instance: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outbox_backlog: Mapped[int] = mapped_column(Integer)
    oldest_unpublished_age_seconds: Mapped[float | None] = mapped_column()
    dlq_counts: Mapped[dict[str, int]] = mapped_column(JSONB)
    consumer_lag: Mapped[dict[str, int]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReleaseReport(Base):
    """The management report of a closed release, as generated and published."""

    __tablename__ = "release_reports"

    release_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    generated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revision: Mapped[int] = mapped_column(Integer, server_default="1")  # 1 at closing, +1 per regeneration


class ReportRefresh(Base):
    """A closed release whose stored report a late fact may have changed: marked in the fact's transaction,
    cleared by the refresher in the transaction that stores and announces the next revision."""

    __tablename__ = "report_refresh"

    release_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DoraIndex(Base):
    """A service's DORA index (``metrics/index.py``) as bytes, valid while the service's fact version is
    ``version``: what a restarted process reads instead of deciding every fact again."""

    __tablename__ = "dora_indexes"

    service: Mapped[str] = mapped_column(String(200), primary_key=True)
    environment: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[int] = mapped_column(SmallInteger)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FactVersion(Base):
    """How many times the facts of a service changed, per topic that changed them: the key of the cached
    per-service index behind /dora (``metrics/index.py``). One row per (service, topic), so the consumer groups
    never update the same row."""

    __tablename__ = "fact_versions"

    service: Mapped[str] = mapped_column(String(200), primary_key=True)
    writer: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
