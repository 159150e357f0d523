"""Evidence in the formats tools already write: JUnit XML and SARIF 2.1.0, for a service, version and commit."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from greenzone_common.auth import Principal, RequireRole
from greenzone_common.db import unit_of_work
from greenzone_common.problems import Problem
from greenzone_common.service import OutboxDep, SessionsDep
from pipeline_svc.evidence.policy import suite_outcome
from pipeline_svc.facts.models import Evidence
from pipeline_svc.facts.schemas import EvidenceRead
from pipeline_svc.facts.service import fact_id
from pipeline_svc.facts.views import evidence_read
from pipeline_svc.intake import service as intake
from pipeline_svc.sources.cloudevents import is_json_media, media_type
from pipeline_svc.sources.facts import ScanFact, ServiceRef, TestsFact
from pipeline_svc.sources.junit import InvalidJUnit, parse_junit
from pipeline_svc.sources.sarif import InvalidSarif, parse_sarif

router = APIRouter(tags=["evidence"])

Reporter = Annotated[Principal, RequireRole("pipeline", "admin")]
Service = Annotated[str, Query(min_length=1, max_length=200, description="The service the evidence is for")]
Version = Annotated[str | None, Query(max_length=200)]
CommitQ = Annotated[str | None, Query(max_length=64)]


async def _store(
    request: Request, sessions: SessionsDep, outbox: OutboxDep, origin: str, body: bytes, fact_of: object
) -> JSONResponse:
    raw_id = uuid.uuid4()
    fact = fact_of(str(raw_id))  # type: ignore[operator]
    delivery = intake.Delivery(
        origin=origin,
        # one upload is one piece of evidence; retries are the Idempotency-Key's job
        delivery_key=f"{raw_id}:{hashlib.sha256(body).hexdigest()[:16]}",
        event_type=origin,
        headers=intake.kept_headers({k.lower(): v for k, v in request.headers.items()}, ("content-type",)),
        body=body,
        subject=fact.ref.explicit,
        source=str(request.url.query),
        occurred_at=fact.reported_at,
        facts=[fact],
        id=raw_id,
    )
    async with unit_of_work(sessions) as session:
        await intake.accept(session, outbox, [delivery])
        row = await session.get(Evidence, _evidence_id(fact))
    assert row is not None
    return JSONResponse(evidence_read(row).model_dump(mode="json"), status_code=201)


def _evidence_id(fact: TestsFact | ScanFact) -> uuid.UUID:
    return fact_id("evidence", fact.source, fact.source_id)


@router.post("/evidence/junit", status_code=201, response_model=EvidenceRead, responses={400: {}, 415: {}})
async def post_junit(
    request: Request,
    user: Reporter,
    sessions: SessionsDep,
    outbox: OutboxDep,
    service: Service,
    version: Version = None,
    commit: CommitQ = None,
) -> JSONResponse:
    media = media_type(request.headers.get("content-type"))
    if not (media.endswith("/xml") or media.endswith("+xml")):
        raise Problem(415, f"JUnit evidence must be XML (content type {media or '(none)'!r})")
    body = await request.body()
    try:
        summary = parse_junit(body)
    except InvalidJUnit as exc:
        raise Problem(400, f"The JUnit XML is not acceptable: {exc}", slug="invalid-junit") from exc
    now = datetime.now(UTC)

    def fact(source_id: str) -> TestsFact:
        return TestsFact(
            ref=ServiceRef(explicit=service),
            outcome=suite_outcome(summary.failed),
            reported_at=now,
            source="junit",
            source_id=source_id,
            version=version,
            commit=commit,
            suite=summary.suite,
            passed=summary.passed,
            failed=summary.failed,
            skipped=summary.skipped,
        )

    return await _store(request, sessions, outbox, "junit", body, fact)


@router.post("/evidence/sarif", status_code=201, response_model=EvidenceRead, responses={400: {}, 415: {}})
async def post_sarif(
    request: Request,
    user: Reporter,
    sessions: SessionsDep,
    outbox: OutboxDep,
    service: Service,
    version: Version = None,
    commit: CommitQ = None,
) -> JSONResponse:
    media = media_type(request.headers.get("content-type"))
    if not is_json_media(media):
        raise Problem(415, f"SARIF evidence must be JSON (content type {media or '(none)'!r})")
    body = await request.body()
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"The request body is not valid JSON: {exc}", slug="invalid-json") from exc
    try:
        summary = parse_sarif(doc)
    except InvalidSarif as exc:
        raise Problem(
            400,
            f"The SARIF log is not acceptable: {exc}",
            slug="invalid-sarif",
            errors=[{"loc": ["body", *exc.field.split(".")], "msg": str(exc)}],
        ) from exc
    now = datetime.now(UTC)

    def fact(source_id: str) -> ScanFact:
        return ScanFact(
            ref=ServiceRef(explicit=service),
            reported_at=now,
            source="sarif",
            source_id=source_id,
            findings=summary.findings,
            version=version,
            commit=commit,
            tool=summary.tool,
        )

    return await _store(request, sessions, outbox, "sarif", body, fact)
