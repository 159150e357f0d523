"""The doors: signed GitHub and GitLab webhooks, and CloudEvents (CDEvents, Tekton) on ``POST /events``.

Order of checks, so that nothing unauthenticated or malformed is ever stored: authenticity (signature, token or
bearer) → content type (415) → JSON (400) → CloudEvents/CDEvents validity (400 naming the field) → one
transaction: raw events (deduplicated) + facts + outbox. The body cap (413) is the app's middleware.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from greenzone_common.auth import Principal, RequireRole
from greenzone_common.db import unit_of_work
from greenzone_common.problems import Problem
from greenzone_common.service import OutboxDep, SessionsDep
from pipeline_svc.config import Settings
from pipeline_svc.intake import service
from pipeline_svc.intake.schemas import IntakeRead
from pipeline_svc.sources import cloudevents, github, gitlab, signatures

router = APIRouter(tags=["intake"])

Pipeline = Annotated[Principal, RequireRole("pipeline", "admin")]
GITHUB_HEADERS = (
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-github-hook-installation-target-type",
    "user-agent",
    "content-type",
)
GITLAB_HEADERS = (
    "x-gitlab-event",
    "x-gitlab-event-uuid",
    "x-gitlab-instance",
    "x-gitlab-webhook-uuid",
    "user-agent",
    "content-type",
)
_UNAUTHORISED = {"WWW-Authenticate": 'Signature realm="greenzone-webhooks"'}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"The request body is not valid JSON: {exc}", slug="invalid-json") from exc
    if not isinstance(payload, dict):
        raise Problem(400, "The webhook payload must be a JSON object", slug="invalid-json")
    return payload


def _answer(outcome: service.Outcome) -> JSONResponse:
    if not outcome.stored:
        body = IntakeRead(status="duplicate", duplicates=len(outcome.duplicates))
        return JSONResponse(body.model_dump(), status_code=200)
    body = IntakeRead(
        status="accepted",
        accepted=len(outcome.stored),
        duplicates=len(outcome.duplicates),
        facts=outcome.recorded.new,
        ids=[str(d.id) for d in outcome.stored],
    )
    return JSONResponse(body.model_dump(), status_code=202)


def _ignored() -> JSONResponse:
    return JSONResponse(IntakeRead(status="ignored").model_dump(), status_code=202)


@router.post(
    "/webhooks/github",
    status_code=202,
    response_model=IntakeRead,
    responses={200: {"description": "A repeated delivery: nothing new stored"}, 401: {}, 400: {}, 415: {}},
)
async def github_webhook(request: Request, sessions: SessionsDep, outbox: OutboxDep) -> JSONResponse:
    body = await request.body()
    headers = _headers(request)
    secret = _settings(request).github_webhook_secret.get_secret_value()
    if not signatures.github_signature_valid(secret, body, headers.get("x-hub-signature-256")):
        raise Problem(401, "Missing or wrong X-Hub-Signature-256", slug="bad-signature", headers=_UNAUTHORISED)
    event = headers.get("x-github-event", "").strip()
    if not event:
        raise Problem(400, "X-GitHub-Event header is required", slug="missing-event-type")
    media = cloudevents.media_type(headers.get("content-type"))
    if media == "application/x-www-form-urlencoded":  # GitHub's other delivery format: payload=<json>
        form = parse_qs(body.decode("utf-8", "replace"))
        payload = _json_object(form.get("payload", [""])[0].encode())
    elif cloudevents.is_json_media(media):
        payload = _json_object(body)
    else:
        raise Problem(415, f"Content type {media or '(none)'!r} is not JSON", slug="unsupported-media-type")
    if event not in github.USED_EVENTS:
        return _ignored()
    delivery_id = headers.get("x-github-delivery") or "sha256:" + hashlib.sha256(body).hexdigest()
    delivery = service.Delivery(
        origin="github",
        delivery_key=delivery_id,
        event_type=f"{event}.{payload['action']}" if isinstance(payload.get("action"), str) else event,
        headers=service.kept_headers(headers, GITHUB_HEADERS),
        body=body,
        source=(payload.get("repository") or {}).get("full_name")
        if isinstance(payload.get("repository"), dict)
        else None,
        facts=github.map_event(event, payload),
    )
    return _answer(await service.DeliveryBatches.of(sessions, outbox).one(delivery))


@router.post(
    "/webhooks/gitlab",
    status_code=202,
    response_model=IntakeRead,
    responses={200: {"description": "A repeated delivery: nothing new stored"}, 401: {}, 400: {}, 415: {}},
)
async def gitlab_webhook(request: Request, sessions: SessionsDep, outbox: OutboxDep) -> JSONResponse:
    headers = _headers(request)
    token = _settings(request).gitlab_webhook_token.get_secret_value()
    if not signatures.gitlab_token_valid(token, headers.get("x-gitlab-token")):
        raise Problem(401, "Missing or wrong X-Gitlab-Token", slug="bad-token", headers=_UNAUTHORISED)
    body = await request.body()
    event = headers.get("x-gitlab-event", "").strip()
    if not event:
        raise Problem(400, "X-Gitlab-Event header is required", slug="missing-event-type")
    media = cloudevents.media_type(headers.get("content-type"))
    if not cloudevents.is_json_media(media):
        raise Problem(415, f"Content type {media or '(none)'!r} is not JSON", slug="unsupported-media-type")
    payload = _json_object(body)
    if event not in gitlab.USED_EVENTS:
        return _ignored()
    delivery_id = headers.get("x-gitlab-event-uuid") or "sha256:" + hashlib.sha256(body).hexdigest()
    project = payload.get("project") if isinstance(payload.get("project"), dict) else {}
    delivery = service.Delivery(
        origin="gitlab",
        delivery_key=delivery_id,
        event_type=str(payload.get("object_kind") or event),
        headers=service.kept_headers(headers, GITLAB_HEADERS),
        body=body,
        source=gitlab.project_path(payload) or (project or {}).get("web_url"),
        facts=gitlab.map_event(event, payload),
    )
    return _answer(await service.DeliveryBatches.of(sessions, outbox).one(delivery))


@router.post(
    "/events",
    status_code=202,
    response_model=IntakeRead,
    responses={200: {"description": "Every event was already received"}, 400: {}, 413: {}, 415: {}},
)
async def post_events(request: Request, user: Pipeline, sessions: SessionsDep, outbox: OutboxDep) -> JSONResponse:
    headers = _headers(request)
    body = await request.body()
    try:
        events = cloudevents.parse_request(headers, body, max_batch=_settings(request).events_batch_max)
    except cloudevents.BadCloudEvent as exc:
        raise Problem(exc.status, exc.detail, slug=exc.slug, errors=[{"loc": exc.loc, "msg": exc.detail}]) from exc
    kept = service.kept_headers(headers, ("content-type", "user-agent"), ("ce-",))
    kept["x-greenzone-sub"] = user.sub
    deliveries = []
    for event in events:  # every event is checked before anything is stored: one bad event rejects the request
        try:
            deliveries.append(service.delivery_of(event, kept))
        except service.RejectedEvent as exc:
            field = ".".join(str(p) for p in exc.loc)
            raise Problem(
                400,
                f"Event {event.id!r} is not valid: {exc.message} (at {field})",
                slug="invalid-event",
                errors=[{"loc": exc.loc, "msg": exc.message}],
            ) from exc
    async with unit_of_work(sessions) as session:
        outcome = await service.accept(session, outbox, deliveries)
    return _answer(outcome)
