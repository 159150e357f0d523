"""Change use cases. They flush; the route that owns the transaction commits (one transaction per use case)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from change_svc.changes import policy
from change_svc.changes.models import Change
from change_svc.changes.schemas import ChangeCreate, ChangeRead
from greenzone_common.auth import Principal
from greenzone_common.contracts.change import ChangeCreated
from greenzone_common.outbox import Outbox


class ChangeNotFound(LookupError):
    pass


async def create_change(session: AsyncSession, outbox: Outbox, data: ChangeCreate, by: Principal) -> Change:
    risk = policy.assess_risk(
        policy.RiskInput(
            type=data.type,
            environment=data.environment,
            commits=len(data.commits),
            planned_start=data.planned_start,
            planned_end=data.planned_end,
        )
    )
    now = datetime.now(UTC)
    change = Change(
        id=str(uuid.uuid4()),
        title=data.title,
        description=data.description,
        type=data.type,
        service=data.service,
        environment=data.environment,
        state="draft",
        outcome=None,
        requested_by=by.sub,
        risk=asdict(risk),
        required_approvals=policy.required_approvals(data.type, risk.level),
        auto_approved=False,
        planned_start=data.planned_start,
        planned_end=data.planned_end,
        template_id=data.template_id,
        release_id=data.release_id,
        version=data.version,
        commits=list(data.commits),
        created_at=now,
        updated_at=now,
    )
    session.add(change)
    await session.flush()  # assigns the number
    await outbox.add(
        session,
        ChangeCreated(
            change_id=change.id,
            number=change.display_number,
            title=change.title,
            type=change.type,
            service=change.service,
            environment=change.environment,
            requested_by=change.requested_by,
            planned_start=change.planned_start,
            planned_end=change.planned_end,
            version=change.version,
            commits=change.commits,
            risk=change.risk,
            release_id=change.release_id,
            created_at=change.created_at,
        ),
    )
    return change


async def get_change(session: AsyncSession, change_id: str) -> Change:
    change = await session.get(Change, change_id)
    if change is None:
        raise ChangeNotFound(change_id)
    return change


def to_read(change: Change) -> ChangeRead:
    return ChangeRead(
        id=change.id,
        number=change.display_number,
        title=change.title,
        description=change.description,
        type=change.type,  # type: ignore[arg-type]
        service=change.service,
        environment=change.environment,
        state=change.state,  # type: ignore[arg-type]
        outcome=change.outcome,  # type: ignore[arg-type]
        requested_by=change.requested_by,
        risk=change.risk,  # type: ignore[arg-type]
        required_approvals=change.required_approvals,
        approvals=[],
        auto_approved=change.auto_approved,
        planned_start=change.planned_start,
        planned_end=change.planned_end,
        template_id=change.template_id,
        release_id=change.release_id,
        version=change.version,
        commits=change.commits,
        review_due=change.review_due,
        created_at=change.created_at,
        updated_at=change.updated_at,
    )
