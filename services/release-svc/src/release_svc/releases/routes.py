from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from greenzone_common.audit import Actor
from greenzone_common.auth import CurrentUser
from greenzone_common.db import unit_of_work
from greenzone_common.pagination import Page, PageDep, page_of
from greenzone_common.problems import Problem, validation_problem
from greenzone_common.service import OutboxDep, SessionsDep
from release_svc.deps import NotifyGuardDep, SettingsDep
from release_svc.gates import service as gates
from release_svc.notifications.policy import UnsafeUrl
from release_svc.notifications.service import UrlGuard
from release_svc.releases import service
from release_svc.releases.models import Release
from release_svc.releases.schemas import (
    CancelBody,
    DeploymentCreate,
    DeploymentResult,
    ReleaseChangeAdd,
    ReleaseCreate,
    ReleaseCreated,
    ReleaseRead,
    ReleaseState,
    ReleaseUpdate,
    RollbackCreate,
)
from release_svc.roles import ReleaseManager

router = APIRouter(tags=["releases"])


def _not_found(release_id: str) -> Problem:
    return Problem(404, f"No release with id {release_id}")


def _conflict(exc: service.ReleaseConflict) -> Problem:
    return Problem(409, exc.detail, slug=exc.slug)


def _unknown_environment(name: str) -> Problem:
    return validation_problem([{"loc": ["body", "environment"], "msg": f"unknown environment {name!r}"}])


async def _check_notify(guard: UrlGuard, urls: list[str]) -> None:
    """422 naming every notification URL the service refuses to call (before anything is written)."""

    async def problem(url: str) -> str | None:
        try:
            await guard.check_planned(url)
        except UnsafeUrl as exc:
            return str(exc)
        return None

    found = await asyncio.gather(*(problem(url) for url in urls))
    errors = [
        {"loc": ["body", "notify", i], "msg": f"{url}: {msg}"}
        for i, (url, msg) in enumerate(zip(urls, found, strict=True))
        if msg
    ]
    if errors:
        raise validation_problem(errors)


@router.post("/releases", status_code=201, response_model=ReleaseCreated)
async def plan_release(
    body: ReleaseCreate,
    user: ReleaseManager,
    request: Request,
    sessions: SessionsDep,
    outbox: OutboxDep,
    guard: NotifyGuardDep,
) -> ReleaseCreated:
    await _check_notify(guard, [str(url) for url in body.notify])
    try:
        async with unit_of_work(sessions) as session:
            release = await service.plan(session, outbox, body, Actor.from_request(user, request), datetime.now(UTC))
            read = await service.to_read(session, release, details=False)
    except service.UnknownReleases as exc:
        raise validation_problem([{"loc": ["body", "depends_on"], "msg": f"unknown release(s): {exc}"}]) from None
    return ReleaseCreated(**read.model_dump(), notify_secret=release.notify_secret)


@router.get("/releases", response_model=Page[ReleaseRead])
async def list_releases(
    user: CurrentUser,
    sessions: SessionsDep,
    page: PageDep,
    state: ReleaseState | None = None,
    service_name: Annotated[str | None, Query(alias="service")] = None,
) -> Page[ReleaseRead]:
    async with sessions() as session:
        rows = await service.list_releases(
            session, state=state, service=service_name, after=page.after, limit=page.limit + 1
        )
        items = [await service.to_read(session, r, details=False) for r in rows]
    return page_of(items, page, key=lambda r: [r.created_at.isoformat(), r.id])


@router.get("/releases/{release_id}", response_model=ReleaseRead)
async def get_release(release_id: str, user: CurrentUser, sessions: SessionsDep) -> ReleaseRead:
    async with sessions() as session:
        release = await session.get(Release, release_id)
        if release is None:
            raise _not_found(release_id)
        return await service.to_read(session, release)


@router.patch("/releases/{release_id}", response_model=ReleaseRead)
async def reschedule_release(
    release_id: str,
    body: ReleaseUpdate,
    user: ReleaseManager,
    request: Request,
    sessions: SessionsDep,
    outbox: OutboxDep,
) -> ReleaseRead:
    try:
        async with unit_of_work(sessions) as session:
            release = await service.get(session, release_id, lock=True)
            await service.reschedule(
                session, outbox, release, body.milestones, Actor.from_request(user, request), datetime.now(UTC)
            )
            return await service.to_read(session, release)
    except service.ReleaseNotFound:
        raise _not_found(release_id) from None
    except service.ReleaseConflict as exc:
        raise _conflict(exc) from None


@router.post("/releases/{release_id}/changes", response_model=ReleaseRead)
async def add_change(
    release_id: str,
    body: ReleaseChangeAdd,
    user: ReleaseManager,
    request: Request,
    sessions: SessionsDep,
    outbox: OutboxDep,
) -> ReleaseRead:
    try:
        async with unit_of_work(sessions) as session:
            release = await service.get(session, release_id, lock=True)
            await service.add_change(
                session, outbox, release, body.change_id, Actor.from_request(user, request), datetime.now(UTC)
            )
            return await service.to_read(session, release)
    except service.ReleaseNotFound:
        raise _not_found(release_id) from None
    except service.ReleaseConflict as exc:
        raise _conflict(exc) from None


@router.post("/releases/{release_id}/cancel", response_model=ReleaseRead)
async def cancel_release(
    release_id: str,
    user: ReleaseManager,
    request: Request,
    sessions: SessionsDep,
    outbox: OutboxDep,
    body: CancelBody | None = None,
) -> ReleaseRead:
    try:
        async with unit_of_work(sessions) as session:
            release = await service.get(session, release_id, lock=True)
            reason = body.reason if body else ""
            await service.cancel(session, outbox, release, reason, Actor.from_request(user, request), datetime.now(UTC))
            return await service.to_read(session, release)
    except service.ReleaseNotFound:
        raise _not_found(release_id) from None
    except service.ReleaseConflict as exc:
        raise _conflict(exc) from None


@router.post("/releases/{release_id}/deployments", status_code=201, response_model=DeploymentResult)
async def deploy_release(
    release_id: str,
    body: DeploymentCreate,
    user: ReleaseManager,
    request: Request,
    sessions: SessionsDep,
    outbox: OutboxDep,
    settings: SettingsDep,
) -> DeploymentResult:
    """The gate first, once per service of the release (its decisions are recorded whatever they say); any denial
    is a 409 carrying the decision, and nothing is deployed."""
    now = datetime.now(UTC)
    try:
        async with unit_of_work(sessions) as session:
            release = await service.get(session, release_id)
            env = await service.environment(session, body.environment)
            await service.check_deployable(session, release, env)
            actor = Actor.from_request(user, request)
            decisions = [
                await gates.evaluate(
                    session,
                    outbox,
                    gates.normalise(name, env.name, release.version, body.commit, None),
                    requested_by=user.sub,
                    now=now,
                    actor=actor,  # each decision in the audit trail, whatever it says
                )
                for name in release.services
            ]
    except service.ReleaseNotFound:
        raise _not_found(release_id) from None
    except service.UnknownEnvironment:
        raise _unknown_environment(body.environment) from None
    except service.ReleaseConflict as exc:
        raise _conflict(exc) from None
    denied = [d for d in decisions if d.decision == "deny"]
    if denied:
        codes = sorted({r.code for d in denied for r in d.reasons})
        raise Problem(
            409,
            f"The gate denied deploying {release.version} to {env.name}: {', '.join(codes)}",
            slug="gate-denied",
            decision=denied[0].model_dump(mode="json"),
            decisions=[d.model_dump(mode="json") for d in decisions],
        )
    try:
        async with unit_of_work(sessions) as session:
            release = await service.get(session, release_id, lock=True)
            deployments = await service.deploy(
                session,
                outbox,
                release,
                env,
                outcome=body.outcome,
                commit=body.commit,
                decision_ids={d.service: d.decision_id for d in decisions},
                by=actor,
                now=now,
                els_period=settings.els_period,
            )
            read = await service.to_read(session, release)
    except service.ReleaseConflict as exc:
        raise _conflict(exc) from None
    return DeploymentResult(
        release=read, deployments=[service.deployment_read(d) for d in deployments], decisions=decisions
    )


@router.post("/releases/{release_id}/rollback", response_model=ReleaseRead)
async def rollback_release(
    release_id: str,
    body: RollbackCreate,
    user: ReleaseManager,
    request: Request,
    sessions: SessionsDep,
    outbox: OutboxDep,
) -> ReleaseRead:
    try:
        async with unit_of_work(sessions) as session:
            release = await service.get(session, release_id, lock=True)
            env = await service.environment(session, body.environment)
            await service.rollback(
                session, outbox, release, env, body.reason, Actor.from_request(user, request), datetime.now(UTC)
            )
            return await service.to_read(session, release)
    except service.ReleaseNotFound:
        raise _not_found(release_id) from None
    except service.UnknownEnvironment:
        raise _unknown_environment(body.environment) from None
    except service.ReleaseConflict as exc:
        raise _conflict(exc) from None


@router.post("/releases/{release_id}/close", response_model=ReleaseRead)
async def close_release(
    release_id: str, user: ReleaseManager, request: Request, sessions: SessionsDep, outbox: OutboxDep
) -> ReleaseRead:
    try:
        async with unit_of_work(sessions) as session:
            release = await service.get(session, release_id, lock=True)
            await service.close(session, outbox, release, Actor.from_request(user, request), datetime.now(UTC))
            return await service.to_read(session, release)
    except service.ReleaseNotFound:
        raise _not_found(release_id) from None
    except service.ReleaseConflict as exc:
        raise _conflict(exc) from None
