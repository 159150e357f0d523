"""The release report: what a release delivered, how its deployments went, and its assessment score.

Generated when ``release.closed`` arrives (in the consumer's transaction), stored, and announced with
``dev.greenzone.report.release.published.v1`` through the outbox. Before a release closes, the same report is
computed on request as a preview. A fact of a closed release that arrives later (an incident, a deployment,
evidence, a change outcome) marks it in ``report_refresh``; ``refresh_report`` then regenerates it and, when it
changed, stores and announces the next revision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from greenzone_common.contracts import release as rl
from greenzone_common.contracts.report import ReleaseReportPublished
from greenzone_common.outbox import Outbox
from report_svc.metrics import formulas as f
from report_svc.metrics.store import iso, load_facts, load_green_zone, production_environments
from report_svc.projections.facts import (
    IncidentFact,
    ReleaseReport,
    ReleaseView,
    ReportRefresh,
    ScanEvidence,
    TestEvidence,
)
from report_svc.projections.handlers import flush_buffer
from report_svc.projections.models import ChangeLifecycle, ChangeView


class ReleaseNotFound(LookupError):
    pass


def change_bucket(state: str, outcome: str | None, cancelled: bool) -> str:
    """implemented / failed / rolled_back / cancelled / pending, from what change-svc said of the change."""
    if cancelled or state == "cancelled":
        return "cancelled"
    if outcome == "successful":
        return "implemented"
    if outcome == "failed":
        return "failed"
    if outcome == "rolled_back":
        return "rolled_back"
    return "pending"


BUCKET_OUTCOME = {"implemented": "successful", "failed": "failed", "rolled_back": "rolled_back"}


async def _service_quality(session: AsyncSession, service: str, version: str) -> bool:
    """The latest test evidence for the version passed and no scan of it found a critical or high issue."""
    latest = (
        await session.execute(
            select(TestEvidence.outcome)
            .where(TestEvidence.service == service, TestEvidence.version == version)
            .order_by(TestEvidence.reported_at.desc(), TestEvidence.evidence_key.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if latest != "success":
        return False
    findings = (
        await session.execute(
            select(ScanEvidence.critical, ScanEvidence.high).where(
                ScanEvidence.service == service, ScanEvidence.version == version
            )
        )
    ).all()
    return not any(c or h for c, h in findings)


async def build_report(session: AsyncSession, release_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    release = await session.get(ReleaseView, release_id)
    if release is None:
        raise ReleaseNotFound(release_id)
    services = set(release.services or [])
    prod = await production_environments(session)

    # changes, by what became of them
    buckets: dict[str, list[str]] = {k: [] for k in ("implemented", "failed", "rolled_back", "cancelled", "pending")}
    outcomes: dict[str, str] = {}
    rows = {
        view.change_id: (view, life)
        for view, life in (
            await session.execute(
                select(ChangeView, ChangeLifecycle)
                .outerjoin(ChangeLifecycle, ChangeLifecycle.change_id == ChangeView.change_id)
                .where(ChangeView.change_id.in_(list(release.changes or [])))
            )
        ).all()
    }
    for change_id in sorted(release.changes or []):
        view, life = rows.get(change_id, (None, None))
        bucket = change_bucket(
            view.state if view else "draft",
            life.outcome if life else None,
            bool(life and life.cancelled_at),
        )
        buckets[bucket].append(change_id)
        outcomes[change_id] = BUCKET_OUTCOME.get(bucket, bucket)

    # the release's production deployments: recorded by release-svc for it, or observed at its version
    facts = await load_facts(session, services=services, environments=prod)
    tl = f.timeline(facts.reports, facts.rollbacks, facts.incidents)
    mine = [
        d
        for d in tl.deployments
        if release_id in d.release_ids or (d.service in services and d.version == release.version)
    ]
    zone = await load_green_zone(session, services)
    deployments = [
        {
            "id": d.id,
            "service": d.service,
            "environment": d.environment,
            "at": iso(d.at),
            "outcome": d.outcome,
            "version": d.version,
            "commit": d.commit,
            "rolled_back": tl.rolled_back.get(d.id, False),
            "green_zone": zone.green(d),
            "sources": sorted(d.sources),
        }
        for d in mine
    ]
    ids = {d.id for d in mine}
    linked = sorted(i for i, d in tl.incident_link.items() if d in ids)
    incident_rows = (
        (await session.execute(select(IncidentFact).where(IncidentFact.incident_id.in_(linked)))).scalars().all()
        if linked
        else []
    )
    incidents = [
        {
            "id": i.incident_id,
            "service": i.service,
            "environment": i.environment,
            "title": i.title,
            "severity": i.severity,
            "started_at": iso(i.started_at),
            "resolved_at": iso(i.resolved_at),
            "deployment_id": tl.incident_link.get(i.incident_id),
        }
        for i in sorted(incident_rows, key=lambda i: i.incident_id)
    ]

    passing = sum([await _service_quality(session, s, release.version) for s in sorted(services)])
    milestones = release.milestones or {}
    deploy_milestone = _parse(milestones.get("deploy"))
    first_success = min((d.at for d in mine if d.succeeded), default=None)
    els_start = release.els_started_at or first_success
    els_end = release.els_ends_at or _parse(milestones.get("els_end"))
    score = f.assessment(
        change_outcomes=outcomes,
        deployments=[
            f.ReleaseDeploymentFact(d.succeeded, tl.rolled_back.get(d.id, False), zone.green(d), d.at) for d in mine
        ],
        services_passing=passing,
        services=len(services),
        deploy_milestone=deploy_milestone,
        els_start=els_start,
        els_end=els_end,
        incidents=[f.ReleaseIncidentFact(i.started_at, i.resolved_at) for i in incident_rows],
    )
    return {
        "release": {
            "id": release.release_id,
            "name": release.name,
            "version": release.version,
            "state": release.state,
            "services": sorted(services),
            "changes": sorted(release.changes or []),
            "milestones": milestones,
            "early_life_support": {"start": iso(els_start), "end": iso(els_end)},
            "closed_at": iso(release.closed_at),
        },
        "changes": buckets,
        "deployments": deployments,
        "incidents": incidents,
        "assessment": score,
        "generated_at": iso(now or datetime.now(UTC)),
    }


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


async def stored_report(session: AsyncSession, release_id: str) -> dict[str, Any] | None:
    row = await session.get(ReleaseReport, release_id)
    return None if row is None else dict(row.body)


def _content(body: dict[str, Any]) -> dict[str, Any]:
    """What a report says, apart from when it was generated and which revision it is."""
    return {k: v for k, v in body.items() if k not in ("generated_at", "revision")}


async def publish_report(
    session: AsyncSession, outbox: Outbox, release_id: str, *, only_if_changed: bool = False
) -> dict[str, Any] | None:
    """Generate, store and announce the report of a closed release; a report already stored is replaced by the
    next revision. With ``only_if_changed``, a report that would say the same as the stored one is left as it is
    (and None returned). Clears the release's refresh mark: the stored report now reflects every committed fact."""
    await flush_buffer(session)  # facts of the same batch, gathered but not yet written
    now = datetime.now(UTC)
    body = await build_report(session, release_id, now=now)
    stored = (
        await session.execute(
            select(ReleaseReport.body, ReleaseReport.revision)
            .where(ReleaseReport.release_id == release_id)
            .with_for_update()  # the refresher and a redelivered release.closed number revisions one at a time
        )
    ).one_or_none()
    await session.execute(delete(ReportRefresh).where(ReportRefresh.release_id == release_id))
    if stored is not None and only_if_changed and _content(dict(stored.body)) == _content(body):
        return None
    revision = 1 if stored is None else stored.revision + 1
    body["revision"] = revision
    stmt = pg_insert(ReleaseReport).values(release_id=release_id, body=body, generated_at=now, revision=revision)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ReleaseReport.release_id],
            set_={k: stmt.excluded[k] for k in ("body", "generated_at", "revision")},
        )
    )
    await outbox.add(
        session,
        ReleaseReportPublished(
            release_id=release_id,
            name=body["release"]["name"],
            version=body["release"]["version"],
            services=body["release"]["services"],
            changes=body["changes"],
            assessment=body["assessment"],
            deployment_count=len(body["deployments"]),
            incident_count=len(body["incidents"]),
            report_url=f"/releases/{release_id}/report",
            generated_at=now,
            revision=revision,
        ),
    )
    return body


async def refresh_marked(session: AsyncSession, outbox: Outbox, *, limit: int = 20) -> int:
    """Regenerate the reports of up to ``limit`` marked releases (one transaction, the caller's); returns how many
    marks were taken. Marks held by another instance are skipped, not waited for."""
    marked = list(
        (
            await session.execute(
                select(ReportRefresh.release_id)
                .order_by(ReportRefresh.requested_at, ReportRefresh.release_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    for release_id in marked:
        try:
            await publish_report(session, outbox, release_id, only_if_changed=True)
        except ReleaseNotFound:  # cannot happen for a marked release, which exists; nothing to refresh
            await session.execute(delete(ReportRefresh).where(ReportRefresh.release_id == release_id))
    return len(marked)


def on_release_closed(outbox: Outbox) -> Any:
    async def handle(session: AsyncSession, data: rl.ReleaseClosed) -> None:
        await publish_report(session, outbox, data.release_id)

    return handle
