from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from greenzone_common.audit import AuditEntryRead
from greenzone_common.auth import CurrentUser
from greenzone_common.pagination import Page, PageDep
from greenzone_common.problems import Problem
from greenzone_common.service import SessionsDep
from release_svc.audit import service
from release_svc.audit.service import Entity
from release_svc.releases.models import Release
from release_svc.roles import Auditor

router = APIRouter(tags=["audit"])


@router.get("/releases/{release_id}/history", response_model=Page[AuditEntryRead])
async def release_history(
    release_id: str, user: CurrentUser, sessions: SessionsDep, page: PageDep
) -> Page[AuditEntryRead]:
    """Everything that happened to the release, oldest first: who, when, from which request or event, before and
    after (as ``GET /changes/{id}/history`` in change-svc)."""
    async with sessions() as session:
        if await session.get(Release, release_id) is None:
            raise Problem(404, f"No release with id {release_id}")
        return await service.entries(session, page, entity="release", entity_id=release_id)


@router.get("/audit", response_model=Page[AuditEntryRead])
async def audit_log(
    user: Auditor,
    sessions: SessionsDep,
    page: PageDep,
    entity: Entity | None = None,
    entity_id: Annotated[str | None, Query(alias="id", max_length=255)] = None,
    actor: Annotated[str | None, Query(max_length=200, description="The token subject that acted")] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
) -> Page[AuditEntryRead]:
    """The whole audit trail of release-svc, oldest first, filtered by entity (and its ``id``), actor or action."""
    async with sessions() as session:
        return await service.entries(session, page, entity=entity, entity_id=entity_id, actor=actor, action=action)
