from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
    auto_approval_reasons: Mapped[list[str]] = mapped_column(JSONB, default=list)
    auto_created: Mapped[bool] = mapped_column(Boolean, default=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    planned_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    planned_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    template_id: Mapped[str | None] = mapped_column(String(36))
    release_id: Mapped[str | None] = mapped_column(String(36), index=True)
    version: Mapped[str | None] = mapped_column(String(100))
    commits: Mapped[list[str]] = mapped_column(JSONB, default=list)
    review_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_summary: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    #: the deployment that completed it ("<source>:<id>"), so a rollback of that deployment finds it
    deployment_ref: Mapped[str | None] = mapped_column(String(300))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    approvals: Mapped[list[Approval]] = relationship(
        lazy="selectin", order_by="Approval.id", cascade="all, delete-orphan"
    )

    @property
    def display_number(self) -> str:
        return f"CHG-{self.number:06d}"


class Approval(Base):
    """One approver's decision; one per approver and change (the unique key backs the 409 on a second vote)."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("change_id", "by", name="uq_approvals_change_id_by"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    change_id: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.changes.id", ondelete="CASCADE"), index=True)
    by: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(10))
    comment: Mapped[str] = mapped_column(Text, default="")
    cab: Mapped[bool] = mapped_column(Boolean, default=False)
    #: true for the auto-approval policy's decision (``by`` is then ``greenzone:auto-approval``)
    policy: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HistoryEntry(Base):
    """The append-only audit trail: every transition, who made it, when and from which request or event."""

    __tablename__ = "change_history"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    change_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_id: Mapped[str | None] = mapped_column(String(255))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    method: Mapped[str | None] = mapped_column(String(10))
    path: Mapped[str | None] = mapped_column(String(500))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    event_type: Mapped[str | None] = mapped_column(String(255))
    event_id: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class StandardTemplate(Base):
    """A pre-approved standard change: changes raised from it are approved on submit."""

    __tablename__ = "standard_templates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    services: Mapped[list[str]] = mapped_column(JSONB, default=list)  # empty: any service
    environments: Mapped[list[str]] = mapped_column(JSONB, default=list)  # empty: any environment
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
