"""Recording facts: one bulk upsert per table, the domain events of what is new on ``greenzone.pipeline``, and the
standard CDEvents on ``greenzone.cdevents`` for deployments, rollbacks and incidents that did not come as CDEvents.
Everything in the caller's transaction (the route commits): a fact and its events are stored together or not at all.

Idempotent: a fact already recorded (same identity in its source) adds no row and no event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Table, Text, any_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common import cdevents
from greenzone_common.bulk import BulkInsert, conflict_clause, records
from greenzone_common.contracts import CDEVENTS_TOPIC
from greenzone_common.contracts.base import EventData
from greenzone_common.contracts.common import Commit, FindingsBySeverity, TestCounts
from greenzone_common.contracts.pipeline import (
    ArtifactPublished,
    CodeChangeMerged,
    CommitsPushed,
    DeploymentObserved,
    IncidentDetected,
    IncidentResolved,
    PipelineRunFinished,
    RollbackObserved,
    ScanReported,
    TestsReported,
)
from greenzone_common.db import frozen_insert
from greenzone_common.ids import name_uuid
from greenzone_common.outbox import COLUMNS as OUTBOX_COLUMNS
from greenzone_common.outbox import Outbox
from pipeline_svc.catalogue.models import CatalogueKey
from pipeline_svc.facts import policy
from pipeline_svc.facts.models import (
    Artifact,
    Deployment,
    Evidence,
    Incident,
    MergedChange,
    Push,
    Rollback,
    Run,
)
from pipeline_svc.intake.models import CHANGE_CREATED, RawEvent
from pipeline_svc.sources.facts import (
    ArtifactFact,
    ChangeOpenedFact,
    DeploymentFact,
    Fact,
    IncidentFact,
    MergeFact,
    PushFact,
    RollbackFact,
    RunFact,
    ScanFact,
    ServiceRef,
    TestsFact,
)

SERVICE_SOURCE = "/greenzone/pipeline-svc"
#: Sources whose deployments, rollbacks and incidents are re-told as standard CDEvents (CDEvents ones already are).
RETOLD_AS_CDEVENTS = {"github", "gitlab", "tekton", "api"}
_NS = uuid.UUID("6f1c9a52-3b8e-4c1d-9a57-2f6b3e0d8c41")


CloudEntry = tuple[str, str, dict[str, Any]]  # (type, subject, CDEvent)


@dataclass
class Staging:
    """What a recording stages, in order: the domain events, then the standard CDEvents, each with the raw event
    its fact came from (so that facts of several deliveries recorded together can be told apart)."""

    events: list[EventData] = field(default_factory=list)
    event_sources: list[uuid.UUID | None] = field(default_factory=list)
    cloud: list[CloudEntry] = field(default_factory=list)
    cloud_sources: list[uuid.UUID | None] = field(default_factory=list)

    def event(self, source: uuid.UUID | None, event: EventData) -> None:
        self.events.append(event)
        self.event_sources.append(source)

    def cdevent(self, source: uuid.UUID | None, entry: CloudEntry) -> None:
        self.cloud.append(entry)
        self.cloud_sources.append(source)

    def of(self, source: uuid.UUID | None) -> list[EventData]:
        """The domain events staged for the facts of ``source``."""
        return [e for e, s in zip(self.events, self.event_sources, strict=True) if s == source]


@dataclass
class Recorded:
    """What one call recorded: the facts that were new, and the events staged for them."""

    new: int = 0
    events: list[EventData] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    staging: Staging = field(default_factory=Staging)  # the same events, each with its raw event


@dataclass(frozen=True)
class Sourced:
    fact: Fact
    raw_event_id: uuid.UUID | None


_KEYS: Table = CatalogueKey.__table__  # type: ignore[assignment]
#: the catalogue keys among some repositories and artifacts (lower case): one statement text whatever the counts
_CATALOGUE_LOOKUP = select(_KEYS.c.kind, _KEYS.c.key, _KEYS.c.service).where(
    or_(
        (_KEYS.c.kind == "repository") & (_KEYS.c.key == any_(bindparam("repos", type_=ARRAY(Text)))),
        (_KEYS.c.kind == "artifact") & (_KEYS.c.key == any_(bindparam("arts", type_=ARRAY(Text)))),
    )
)


async def catalogue_lookup(session: AsyncSession, refs: Iterable[ServiceRef]) -> tuple[dict[str, str], dict[str, str]]:
    repos = {r.repository.lower() for r in refs if r.repository}
    arts = {r.artifact.lower() for r in refs if r.artifact}
    if not repos and not arts:
        return {}, {}
    rows = await session.execute(_CATALOGUE_LOOKUP, {"repos": list(repos), "arts": list(arts)})
    repositories: dict[str, str] = {}
    artifacts: dict[str, str] = {}
    for kind, key, service in rows:
        (repositories if kind == "repository" else artifacts)[key] = service
    return repositories, artifacts


RUNS: Table = Run.__table__  # type: ignore[assignment]
DEPLOYMENTS: Table = Deployment.__table__  # type: ignore[assignment]
ROLLBACKS: Table = Rollback.__table__  # type: ignore[assignment]
PUSHES: Table = Push.__table__  # type: ignore[assignment]
MERGED: Table = MergedChange.__table__  # type: ignore[assignment]
EVIDENCE: Table = Evidence.__table__  # type: ignore[assignment]
ARTIFACTS: Table = Artifact.__table__  # type: ignore[assignment]


#: ``INSERT … ON CONFLICT DO NOTHING RETURNING *`` per fact table, built once (compiled once per process)
_INSERT_NEW = {
    table: frozen_insert(pg_insert(table).on_conflict_do_nothing().returning(*table.c))
    for table in (DEPLOYMENTS, ROLLBACKS, PUSHES, MERGED, EVIDENCE, ARTIFACTS)
}


async def _insert_new(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> list[Any]:
    """Insert ``rows`` (one executemany, compiled once), skipping those already recorded; the new ones back (as
    ``bulk.records``)."""
    return records(await session.execute(_INSERT_NEW[table], rows))


_NS_BYTES = _NS.bytes


def fact_id(*parts: object) -> uuid.UUID:
    """``uuid5(_NS, the parts joined by U+001F)`` (``ids.name_uuid``; a test holds them equal)."""
    return name_uuid(_NS_BYTES, "\x1f".join(map(str, parts)))


#: what the catalogue knows of some repositories and artifacts (``catalogue_lookup``)
Catalogue = tuple[dict[str, str], dict[str, str]]


async def record(
    session: AsyncSession,
    outbox: Outbox,
    facts: Sequence[Sourced],
    *,
    catalogue: Catalogue | None = None,
    outbox_rows: list[dict[str, Any]] | None = None,
    traces: Mapping[uuid.UUID | None, dict[str, str]] | None = None,
) -> Recorded:
    """Record ``facts`` and stage their events. A caller recording several deliveries' facts in one transaction
    can pass the ``catalogue`` looked up once for all of them, and an ``outbox_rows`` list to collect the rows in
    and stage them with ``stage`` in one statement at the end (each row carries the trace current when it was
    made, or, given ``traces``, the trace of the raw event its fact came from); otherwise both happen here."""
    result = Recorded()
    if not facts:
        return result
    repositories, artifacts = catalogue or await catalogue_lookup(session, (s.fact.ref for s in facts))

    def service_of(ref: ServiceRef) -> str:
        return policy.resolve_service(ref, repositories, artifacts)

    by_type: dict[type, list[Sourced]] = {}
    for s in facts:
        by_type.setdefault(type(s.fact), []).append(s)
    staging = Staging()
    if RunFact in by_type:
        await _runs(session, by_type[RunFact], service_of, staging)
    if DeploymentFact in by_type:
        await _deployments(session, by_type[DeploymentFact], service_of, staging)
    if RollbackFact in by_type:
        await _rollbacks(session, by_type[RollbackFact], service_of, staging)
    if PushFact in by_type:
        await _pushes(session, by_type[PushFact], service_of, staging)
    if MergeFact in by_type:
        await _merges(session, by_type[MergeFact], service_of, staging)
    if ChangeOpenedFact in by_type:
        await _changes_opened(session, by_type[ChangeOpenedFact], staging)
    if TestsFact in by_type or ScanFact in by_type:
        await _evidence(session, by_type.get(TestsFact, []) + by_type.get(ScanFact, []), service_of, staging)
    if ArtifactFact in by_type:
        await _artifacts(session, by_type[ArtifactFact], service_of, staging)
    if IncidentFact in by_type:
        for s in by_type[IncidentFact]:
            cloud: list[CloudEntry] = []
            incident, staged = await apply_incident(session, s, service_of(s.fact.ref), cloud)  # type: ignore[arg-type]
            for event in staged:
                staging.event(s.raw_event_id, event)
            for entry in cloud:
                staging.cdevent(s.raw_event_id, entry)
            if incident is not None:
                result.incidents.append(incident)
    rows = _outbox_rows(outbox, staging, traces)
    if outbox_rows is None:
        await stage(session, outbox, rows)
    else:
        outbox_rows += rows
    result.events = staging.events
    result.new = len(staging.events)
    result.staging = staging
    return result


_OUTBOX_INSERTS: dict[Table, BulkInsert] = {}


def _outbox_rows(
    outbox: Outbox, staging: Staging, traces: Mapping[uuid.UUID | None, dict[str, str]] | None
) -> list[dict[str, Any]]:
    """The domain events, then the standard CDEvents, in that order (``seq``), as ``Outbox.row`` and
    ``Outbox.cloudevent_row`` make them, each with the trace of its raw event in ``traces``, else the current one."""
    current = outbox.trace()  # one request's: the same for every row

    def trace(source: uuid.UUID | None) -> dict[str, str]:
        return traces.get(source, current) if traces else current

    now = datetime.now(UTC)  # one moment for the events of one transaction: sent once (BulkInsert)
    rows = [
        outbox.row(e, trace=trace(src), model=True, time=now)  # written by stage's BulkInsert
        for e, src in zip(staging.events, staging.event_sources, strict=True)
    ]
    rows += [
        outbox.cloudevent_row(topic=CDEVENTS_TOPIC, type=t, subject=subject, data=data, trace=trace(src), time=now)
        for (t, subject, data), src in zip(staging.cloud, staging.cloud_sources, strict=True)
    ]
    return rows


async def stage(session: AsyncSession, outbox: Outbox, rows: list[dict[str, Any]]) -> None:
    """Write outbox ``rows`` in one statement (instead of one per event), in their order."""
    if not rows:
        return
    insert = _OUTBOX_INSERTS.get(outbox.table)
    if insert is None:
        insert = BulkInsert(outbox.table, OUTBOX_COLUMNS, returning=[], ordered=True)
        _OUTBOX_INSERTS[outbox.table] = insert
    await insert.execute(session, rows)
    outbox.staged(session)


def _final_first(items: list[Sourced]) -> list[Sourced]:
    """One fact per run key (a batch may hold a run's start and end): the completed report wins, else the last."""
    chosen: dict[tuple[str, str, str], Sourced] = {}
    for s in items:
        f: RunFact = s.fact  # type: ignore[assignment]
        key = (f.source, f.kind, f.run_key)
        previous = chosen.get(key)
        if previous is None or f.status == "completed" or previous.fact.status != "completed":  # type: ignore[union-attr]
            chosen[key] = s
    return list(chosen.values())


def _upsert_runs() -> Any:
    """Runs by ``(source, kind, run_key)``, whose uuid5 is the id: a completed run never goes back to running
    (deliveries arrive out of order); known values are kept. Its ON CONFLICT clause is the one ``_UPSERT_RUNS``
    sends."""
    insert = pg_insert(RUNS)
    ex = insert.excluded
    t = RUNS.c
    return insert.on_conflict_do_update(
        index_elements=[t.id],
        set_={
            "status": ex.status,
            "outcome": ex.outcome,
            "service": ex.service,
            "queued_at": func.coalesce(t.queued_at, ex.queued_at),
            "started_at": func.coalesce(ex.started_at, t.started_at),
            "finished_at": func.coalesce(ex.finished_at, t.finished_at),
            "duration_s": func.coalesce(ex.duration_s, t.duration_s),
            "queue_s": func.coalesce(ex.queue_s, t.queue_s),
            "commit": func.coalesce(ex.commit, t.commit),
            "branch": func.coalesce(ex.branch, t.branch),
            "version": func.coalesce(ex.version, t.version),
            "url": func.coalesce(ex.url, t.url),
            "raw_event_id": ex.raw_event_id,
            "updated_at": func.now(),
        },
        where=t.status != "completed",
    )


_RUN_COLUMNS = (
    "id",
    "source",
    "kind",
    "run_key",
    "service",
    "pipeline",
    "status",
    "outcome",
    "queued_at",
    "started_at",
    "finished_at",
    "duration_s",
    "queue_s",
    "repository",
    "branch",
    "commit",
    "version",
    "url",
    "raw_event_id",
)
#: ``xmax`` is 0 in a row the upsert inserted, the transaction's id in one it merged into (what PostgreSQL's
#: ``ON CONFLICT DO UPDATE`` leaves in the system column): a new run is what was sent, a merged one is read back
_XMAX = Column("xmax", BigInteger)
_UPSERT_RUNS = BulkInsert(RUNS, _RUN_COLUMNS, conflict_clause(_upsert_runs()), returning=[RUNS.c.id, _XMAX])
_MERGED_RUNS = select(*(RUNS.c[name] for name in _RUN_COLUMNS)).where(RUNS.c.id == any_(bindparam("ids")))


async def _runs(session: AsyncSession, items: list[Sourced], service_of: Any, staging: Staging) -> None:
    """Record the runs; announce each pipeline run that the statement completed. Only the ids (and whether the row
    is new) come back: returning every column of 500 runs cost the driver about 1.5 µs a row to decode (a scratch
    timing), and most rows are new, so exactly the values sent."""
    sent: dict[uuid.UUID, dict[str, Any]] = {}
    for s in _final_first(items):
        f: RunFact = s.fact  # type: ignore[assignment]
        row = {
            "id": fact_id("run", f.source, f.kind, f.run_key),
            "source": f.source,
            "kind": f.kind,
            "run_key": f.run_key,
            "service": service_of(f.ref),
            "pipeline": f.pipeline,
            "status": f.status,
            "outcome": f.outcome,
            "queued_at": f.queued_at,
            "started_at": f.started_at,
            "finished_at": f.finished_at,
            "duration_s": f.duration_s,
            "queue_s": f.queue_s,
            "repository": f.repository,
            "branch": f.branch,
            "commit": f.commit,
            "version": f.version,
            "url": f.url,
            "raw_event_id": s.raw_event_id,
        }
        sent[row["id"]] = row
    changed = await _UPSERT_RUNS.execute(session, list(sent.values()))
    merged = [r.id for r in changed if r.xmax != 0]
    recorded = {r.id: r._mapping for r in await session.execute(_MERGED_RUNS, {"ids": merged})} if merged else {}
    for returned in changed:
        run = recorded.get(returned.id) or sent[returned.id]
        if run["kind"] != "pipeline" or run["status"] != "completed" or run["finished_at"] is None:
            continue
        outcome = run["outcome"]
        staging.event(
            run["raw_event_id"],
            PipelineRunFinished(
                service=run["service"],
                pipeline=run["pipeline"],
                run_id=run["run_key"],
                outcome=outcome if outcome in ("success", "failure", "cancel", "error") else "error",
                queued_at=run["queued_at"],
                started_at=run["started_at"],
                finished_at=run["finished_at"],
                repository=run["repository"],
                branch=run["branch"],
                commit=run["commit"],
                version=run["version"],
                url=run["url"],
                source=run["source"],
                duration_s=run["duration_s"],
                queue_s=run["queue_s"],
            ),
        )


def _purl(service: str, version: str | None, commit: str | None) -> str:
    tail = version or commit
    return f"pkg:generic/{service}@{tail}" if tail else f"pkg:generic/{service}"


def _cdevent_id(*parts: object) -> str:
    return str(fact_id("cdevent", *parts))


async def _deployments(session: AsyncSession, items: list[Sourced], service_of: Any, staging: Staging) -> None:
    rows = []
    for s in items:
        f: DeploymentFact = s.fact  # type: ignore[assignment]
        rows.append(
            {
                "id": fact_id("deployment", f.source, f.source_id, f.outcome),
                "service": service_of(f.ref),
                "environment": f.environment,
                "version": f.version,
                "commit": f.commit,
                "outcome": f.outcome,
                "at": f.at,
                "source": f.source,
                "source_id": f.source_id,
                "change_id": f.change_id,
                "url": f.url,
                "raw_event_id": s.raw_event_id,
            }
        )
    new = await _insert_new(session, DEPLOYMENTS, rows)
    for d in new:
        staging.event(
            d.raw_event_id,
            DeploymentObserved(
                service=d.service,
                environment=d.environment,
                version=d.version,
                commit=d.commit,
                outcome=d.outcome,  # type: ignore[arg-type]
                at=d.at,
                source=d.source,
                source_id=d.source_id,
                change_id=d.change_id,
                url=d.url,
            ),
        )
        if d.source in RETOLD_AS_CDEVENTS and d.outcome == "success":
            staging.cdevent(
                d.raw_event_id,
                (
                    cdevents.type_string("service.deployed"),
                    d.source_id,
                    cdevents.build(
                        "service.deployed",
                        source=SERVICE_SOURCE,
                        subject_id=d.source_id,
                        subject_source=f"{SERVICE_SOURCE}/{d.source}",
                        content={
                            "environment": {"id": d.environment},
                            "artifactId": _purl(d.service, d.version, d.commit),
                        },
                        at=d.at,
                        event_id=_cdevent_id("service.deployed", d.source, d.source_id),
                    ),
                ),
            )


async def _rollbacks(session: AsyncSession, items: list[Sourced], service_of: Any, staging: Staging) -> None:
    rows = []
    for s in items:
        f: RollbackFact = s.fact  # type: ignore[assignment]
        rows.append(
            {
                "id": fact_id("rollback", f.source, f.source_id),
                "service": service_of(f.ref),
                "environment": f.environment,
                "version": f.version,
                "commit": f.commit,
                "at": f.at,
                "source": f.source,
                "source_id": f.source_id,
                "raw_event_id": s.raw_event_id,
            }
        )
    new = await _insert_new(session, ROLLBACKS, rows)
    for r in new:
        await _mark_rolled_back(session, r)
        staging.event(
            r.raw_event_id,
            RollbackObserved(
                service=r.service,
                environment=r.environment,
                version=r.version,
                commit=r.commit,
                at=r.at,
                source=r.source,
                source_id=r.source_id,
            ),
        )
        if r.source in RETOLD_AS_CDEVENTS:
            staging.cdevent(
                r.raw_event_id,
                (
                    cdevents.type_string("service.rolledback"),
                    r.source_id,
                    cdevents.build(
                        "service.rolledback",
                        source=SERVICE_SOURCE,
                        subject_id=r.source_id,
                        subject_source=f"{SERVICE_SOURCE}/{r.source}",
                        content={
                            "environment": {"id": r.environment},
                            "artifactId": _purl(r.service, r.version, r.commit),
                        },
                        at=r.at,
                        event_id=_cdevent_id("service.rolledback", r.source, r.source_id),
                    ),
                ),
            )


async def _mark_rolled_back(session: AsyncSession, r: Any) -> None:
    """The latest successful deployment of the service and environment at or before the rollback was rolled back."""
    d = Deployment
    latest = (
        select(d.id)
        .where(d.service == r.service, d.environment == r.environment, d.outcome == "success", d.at <= r.at)
        .order_by(d.at.desc())
        .limit(1)
        .scalar_subquery()
    )
    await session.execute(update(d).where(d.id == latest).values(rolled_back=True))


async def _pushes(session: AsyncSession, items: list[Sourced], service_of: Any, staging: Staging) -> None:
    rows = []
    for s in items:
        f: PushFact = s.fact  # type: ignore[assignment]
        rows.append(
            {
                "id": fact_id("push", f.source, f.source_id),
                "service": service_of(f.ref),
                "repository": f.repository,
                "branch": f.branch,
                "default_branch": f.default_branch,
                "on_default_branch": f.default_branch is not None and f.branch == f.default_branch,
                "pushed_at": f.pushed_at,
                "commits": [
                    {
                        "sha": c.sha,
                        "timestamp": c.timestamp.isoformat(),
                        "message": c.message,
                        "author": c.author,
                        "url": c.url,
                    }
                    for c in f.commits
                ],
                "source": f.source,
                "source_id": f.source_id,
                "raw_event_id": s.raw_event_id,
            }
        )
    for p in await _insert_new(session, PUSHES, rows):
        staging.event(
            p.raw_event_id,
            CommitsPushed(
                service=p.service,
                repository=p.repository,
                branch=p.branch,
                default_branch=p.default_branch,
                commits=[Commit.model_validate(c) for c in p.commits],
                pushed_at=p.pushed_at,
                source=p.source,
            ),
        )


async def _merges(session: AsyncSession, items: list[Sourced], service_of: Any, staging: Staging) -> None:
    rows = []
    for s in items:
        f: MergeFact = s.fact  # type: ignore[assignment]
        started = f.started_at
        if f.created_subject is not None:
            started = await change_created_at(session, f.created_subject) or f.merged_at
        rows.append(
            {
                "id": fact_id("merge", f.source, f.repository, f.change_id),
                "service": service_of(f.ref),
                "repository": f.repository,
                "change_id": f.change_id,
                "number": f.number,
                "title": f.title,
                "started_at": started,
                "merged_at": f.merged_at,
                "commit": f.commit,
                "url": f.url,
                "source": f.source,
                "raw_event_id": s.raw_event_id,
            }
        )
    for m in await _insert_new(session, MERGED, rows):
        staging.event(
            m.raw_event_id,
            CodeChangeMerged(
                service=m.service,
                repository=m.repository,
                change_id=m.change_id,
                number=m.number,
                title=m.title,
                started_at=m.started_at,
                merged_at=m.merged_at,
                commit=m.commit,
                url=m.url,
                source=m.source,
            ),
        )


async def _changes_opened(session: AsyncSession, items: list[Sourced], staging: Staging) -> None:
    """A ``change.created`` that arrives after its ``change.merged``: the merge's start moves back to it, and the
    merge is announced again with the corrected start (same source and change id: consumers upsert on them), so
    lead time does not depend on the order events arrived in."""
    m = MERGED.c
    for s in items:
        f: ChangeOpenedFact = s.fact  # type: ignore[assignment]
        stmt = (
            update(MERGED)
            .where(m.source == "cdevents", m.change_id == f.subject_id, m.started_at > f.at)
            .values(started_at=f.at)
            .returning(*MERGED.c)
        )
        for row in (await session.execute(stmt)).all():
            staging.event(
                s.raw_event_id,
                CodeChangeMerged(
                    service=row.service,
                    repository=row.repository,
                    change_id=row.change_id,
                    number=row.number,
                    title=row.title,
                    started_at=row.started_at,
                    merged_at=row.merged_at,
                    commit=row.commit,
                    url=row.url,
                    source=row.source,
                ),
            )


#: the condition as literal SQL, so that PostgreSQL can use the partial index ``ix_raw_events_change_created``
CHANGE_CREATED_AT = select(func.min(RawEvent.occurred_at)).where(
    text(CHANGE_CREATED), RawEvent.subject == bindparam("subject")
)


async def change_created_at(session: AsyncSession, subject_id: str) -> datetime | None:
    """When the CDEvents ``change.created`` of ``subject_id`` happened, if one was received."""
    value: datetime | None = (await session.execute(CHANGE_CREATED_AT, {"subject": subject_id})).scalar()
    return value


async def _evidence(session: AsyncSession, items: list[Sourced], service_of: Any, staging: Staging) -> None:
    rows = []
    for s in items:
        f = s.fact
        base = {
            "service": service_of(f.ref),
            "raw_event_id": s.raw_event_id,
        }
        if isinstance(f, TestsFact):
            rows.append(
                {
                    **base,
                    "id": fact_id("evidence", f.source, f.source_id),
                    "kind": "tests",
                    "version": f.version,
                    "commit": f.commit,
                    "name": f.suite,
                    "outcome": f.outcome,
                    "passed": f.passed,
                    "failed": f.failed,
                    "skipped": f.skipped,
                    "critical": 0,
                    "high": 0,
                    "medium": 0,
                    "low": 0,
                    "note": 0,
                    "reported_at": f.reported_at,
                    "source": f.source,
                    "source_id": f.source_id,
                }
            )
        elif isinstance(f, ScanFact):
            rows.append(
                {
                    **base,
                    "id": fact_id("evidence", f.source, f.source_id),
                    "kind": "scan",
                    "version": f.version,
                    "commit": f.commit,
                    "name": f.tool,
                    "outcome": None,
                    "passed": 0,
                    "failed": 0,
                    "skipped": 0,
                    **{sev: int(f.findings.get(sev, 0)) for sev in ("critical", "high", "medium", "low", "note")},
                    "reported_at": f.reported_at,
                    "source": f.source,
                    "source_id": f.source_id,
                }
            )
    for e in await _insert_new(session, EVIDENCE, rows):
        if e.kind == "tests":
            staging.event(
                e.raw_event_id,
                TestsReported(
                    service=e.service,
                    version=e.version,
                    commit=e.commit,
                    suite=e.name,
                    counts=TestCounts(passed=e.passed, failed=e.failed, skipped=e.skipped),
                    outcome=e.outcome,  # type: ignore[arg-type]
                    reported_at=e.reported_at,
                    source=e.source,
                ),
            )
        else:
            staging.event(
                e.raw_event_id,
                ScanReported(
                    service=e.service,
                    version=e.version,
                    commit=e.commit,
                    tool=e.name,
                    findings=FindingsBySeverity(
                        critical=e.critical, high=e.high, medium=e.medium, low=e.low, note=e.note
                    ),
                    reported_at=e.reported_at,
                    source=e.source,
                ),
            )


async def _artifacts(session: AsyncSession, items: list[Sourced], service_of: Any, staging: Staging) -> None:
    rows = []
    for s in items:
        f: ArtifactFact = s.fact  # type: ignore[assignment]
        rows.append(
            {
                "id": fact_id("artifact", f.source, f.source_id),
                "service": service_of(f.ref),
                "name": f.name,
                "version": f.version,
                "digest": f.digest,
                "commit": f.commit,
                "purl": f.purl,
                "published_at": f.published_at,
                "source": f.source,
                "source_id": f.source_id,
                "raw_event_id": s.raw_event_id,
            }
        )
    for a in await _insert_new(session, ARTIFACTS, rows):
        staging.event(
            a.raw_event_id,
            ArtifactPublished(
                service=a.service,
                name=a.name,
                version=a.version,
                digest=a.digest,
                commit=a.commit,
                purl=a.purl,
                published_at=a.published_at,
                source=a.source,
            ),
        )


async def apply_incident(
    session: AsyncSession,
    s: Sourced,
    service: str,
    cloud: list[tuple[str, str, dict[str, Any]]],
    reported_by: str | None = None,
) -> tuple[Incident | None, list[EventData]]:
    """Detected and resolved reports of one incident, in either order: the earliest detection is its start, the
    first resolution its end; an event is staged only when one of them is newly known."""
    f: IncidentFact = s.fact  # type: ignore[assignment]
    existing = (
        await session.execute(
            select(Incident).where(Incident.source == f.source, Incident.source_key == f.incident_key).with_for_update()
        )
    ).scalar_one_or_none()
    if existing is None:
        insert = (
            pg_insert(Incident)
            .values(
                id=str(fact_id("incident", f.source, f.incident_key)),
                source=f.source,
                source_key=f.incident_key,
                service=service,
                environment=f.environment,
                title=f.title,
                severity=f.severity,
                version=f.version,
                commit=f.commit,
                url=f.url,
                reported_by=reported_by,
            )
            .on_conflict_do_nothing()
            .returning(Incident)
        )
        existing = (await session.execute(insert)).scalar_one_or_none()
        if existing is None:  # a concurrent report inserted it first
            existing = (
                await session.execute(
                    select(Incident)
                    .where(Incident.source == f.source, Incident.source_key == f.incident_key)
                    .with_for_update()
                )
            ).scalar_one()
    incident = existing
    for attr in ("title", "severity", "version", "commit", "url"):
        if getattr(incident, attr) is None and getattr(f, attr) is not None:
            setattr(incident, attr, getattr(f, attr))
    events: list[EventData] = []
    if f.action == "detected":
        if incident.detected_at is None or f.at < incident.detected_at:
            first = incident.detected_at is None
            incident.detected_at = f.at
            if first:
                events.append(_incident_event(IncidentDetected, incident, f.at))
                _retell(incident, "incident.detected", f.at, cloud)
    elif incident.resolved_at is None:
        incident.resolved_at = f.at
        events.append(_incident_event(IncidentResolved, incident, f.at))
        _retell(incident, "incident.resolved", f.at, cloud)
    await session.flush()
    return incident, events


def _incident_event(model: type[IncidentDetected] | type[IncidentResolved], i: Incident, at: datetime) -> EventData:
    common: dict[str, Any] = {
        "incident_id": i.id,
        "service": i.service,
        "environment": i.environment,
        "severity": i.severity,
        "version": i.version,
        "commit": i.commit,
        "at": at,
        "source": i.source,
    }
    if model is IncidentDetected:
        common.update(title=i.title, url=i.url)
    return model(**common)


def _retell(i: Incident, name: str, at: datetime, cloud: list[tuple[str, str, dict[str, Any]]]) -> None:
    if i.source not in RETOLD_AS_CDEVENTS:
        return
    content: dict[str, Any] = {
        "description": i.title,
        "environment": {"id": i.environment},
        "service": {"id": i.service},
    }
    if i.version or i.commit:
        content["artifactId"] = _purl(i.service, i.version, i.commit)
    cloud.append(
        (
            cdevents.type_string(name),
            i.id,
            cdevents.build(
                name,
                source=SERVICE_SOURCE,
                subject_id=i.id,
                subject_source=f"{SERVICE_SOURCE}/incidents",
                content=content,
                at=at,
                event_id=_cdevent_id(name, i.id),
            ),
        )
    )
