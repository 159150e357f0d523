"""release-svc's audit trail (greenzone_common.audit): every mutation of the catalogue, environments, windows,
freezes, releases and the gate, written by its use case in the use case's transaction, and read back."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common import audit
from greenzone_common.audit import Actor, AuditEntryRead
from greenzone_common.pagination import Page, PageParams
from release_svc.db import Base

AUDIT = audit.audit_table(Base.metadata)

#: Never copied into the trail: the webhook signing key is shown once, to its creator.
SECRET_COLUMNS = frozenset({"notify_secret"})

Entity = Literal["service", "environment", "window", "freeze", "release", "gate_decision"]


def snapshot(obj: Any, exclude: Collection[str] = ()) -> dict[str, Any]:
    return audit.snapshot(obj, exclude=SECRET_COLUMNS | set(exclude))


async def record(
    session: AsyncSession,
    actor: Actor,
    entity: Entity,
    entity_id: str,
    action: str,
    *,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    **details: Any,
) -> None:
    await audit.record(
        session,
        AUDIT,
        actor,
        entity=entity,
        entity_id=entity_id,
        action=action,
        before=before,
        after=after,
        at=at,
        **details,
    )


def gate_evaluated_entry(actor: Actor, decision: dict[str, Any], at: datetime) -> dict[str, Any]:
    """A gate decision is a mutation too (a decision row, an event, maybe a drafted change): who asked, and what
    it answered (``decision``: the GateDecisionRead in JSON). The gate writes it in the statement that records the
    decision (gates.service.evaluate)."""
    return audit.entry(
        actor, entity="gate_decision", entity_id=decision["decision_id"], action="evaluated", at=at, after=decision
    )


async def entries(
    session: AsyncSession,
    params: PageParams,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> Page[AuditEntryRead]:
    return await audit.entries(session, AUDIT, params, entity=entity, entity_id=entity_id, actor=actor, action=action)
