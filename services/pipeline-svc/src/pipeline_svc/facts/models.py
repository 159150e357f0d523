"""Normalised facts: what happened in delivery, whatever tool said it. One row per fact, keyed by its identity in
its source so a second report of the same thing is recognised."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint, false, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from pipeline_svc.db import Base


class Run(Base):
    """A pipeline run (kind ``pipeline``) or a build inside one (``job``, ``task``, ``check_run`` …). Its id is the
    uuid5 of ``(source, kind, run_key)`` (``facts.service.fact_id``): the primary key is what keeps one row per run,
    with no second unique index on the three (every run recorded paid for both)."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_service_finished", "service", "finished_at"),
        Index("ix_runs_updated", "updated_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    run_key: Mapped[str] = mapped_column(Text)
    service: Mapped[str] = mapped_column(String(200))
    pipeline: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(20))
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column(Float)
    queue_s: Mapped[float | None] = mapped_column(Float)
    repository: Mapped[str | None] = mapped_column(Text)
    branch: Mapped[str | None] = mapped_column(Text)
    commit: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    raw_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Deployment(Base):
    """A deployment outcome a tool reported. The same deployment may be reported as failed, then as succeeded:
    one row per (source, source id, outcome)."""

    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("source", "source_id", "outcome"),
        Index("ix_deployments_service_env_at", "service", "environment", "at"),
        Index("ix_deployments_at", "at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    version: Mapped[str | None] = mapped_column(String(200))
    commit: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(Text)
    change_id: Mapped[str | None] = mapped_column(String(100))
    url: Mapped[str | None] = mapped_column(Text)
    rolled_back: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    raw_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Rollback(Base):
    __tablename__ = "rollbacks"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    service: Mapped[str] = mapped_column(String(200), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    version: Mapped[str | None] = mapped_column(String(200))
    commit: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(Text)
    raw_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class Push(Base):
    """Commits pushed to a branch (those on the default branch count for lead time)."""

    __tablename__ = "pushes"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    service: Mapped[str] = mapped_column(String(200), index=True)
    repository: Mapped[str] = mapped_column(Text)
    branch: Mapped[str] = mapped_column(Text)
    default_branch: Mapped[str | None] = mapped_column(Text)
    on_default_branch: Mapped[bool] = mapped_column(Boolean)
    pushed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    commits: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    source: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(Text)
    raw_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class MergedChange(Base):
    """A merged pull/merge request (or CDEvents change)."""

    __tablename__ = "merged_changes"
    __table_args__ = (UniqueConstraint("source", "repository", "change_id"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    service: Mapped[str] = mapped_column(String(200), index=True)
    repository: Mapped[str] = mapped_column(Text)
    change_id: Mapped[str] = mapped_column(Text)
    number: Mapped[str | None] = mapped_column(String(40))
    title: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    merged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    commit: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(40))
    raw_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    service: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str | None] = mapped_column(Text)
    commit: Mapped[str | None] = mapped_column(String(64))
    purl: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(Text)
    raw_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class Evidence(Base):
    """A test-suite result (kind ``tests``) or a security scan's findings by severity (kind ``scan``)."""

    __tablename__ = "evidence"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("ix_evidence_service_version", "service", "version", "reported_at"),
        Index("ix_evidence_reported", "reported_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    service: Mapped[str] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(200))
    commit: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(Text)  # the suite, or the scanning tool
    outcome: Mapped[str | None] = mapped_column(String(20))
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    critical: Mapped[int] = mapped_column(Integer, default=0)
    high: Mapped[int] = mapped_column(Integer, default=0)
    medium: Mapped[int] = mapped_column(Integer, default=0)
    low: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[int] = mapped_column(Integer, default=0)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(Text)
    raw_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class Incident(Base):
    """An incident from a monitoring tool (CDEvents) or ``POST /incidents``; detected and resolved may arrive in
    either order."""

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("source", "source_key"),
        Index("ix_incidents_service", "service", "detected_at"),
        Index("ix_incidents_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    source_key: Mapped[str] = mapped_column(Text)
    service: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str | None] = mapped_column(String(40))
    version: Mapped[str | None] = mapped_column(String(200))
    commit: Mapped[str | None] = mapped_column(String(64))
    detected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    url: Mapped[str | None] = mapped_column(Text)
    reported_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
