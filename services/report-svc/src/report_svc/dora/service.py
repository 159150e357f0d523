"""The DORA use case: which services, then the figures from each service's index.

A service's index (``metrics/index.py``) is valid for one fact version (``fact_versions``). It is looked for, in
order: in this process's cache; in ``dora_indexes``, where builds are stored in the background (at most every 30 s
per service), so that a restart does not decide a million deployments again; else it is built from the facts, in
a worker thread so that the event loop (HTTP, consumers) keeps running: small services eight at a time from one
read of their facts, large ones one at a time. The figures equal ``formulas.dora`` over the facts.

At startup ``warm`` fills the cache for every service in production, so the first ``GET /dora`` after a restart
finds it ready; a request that arrives first waits at most for the build of one large service before its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from report_svc.metrics import formulas as f
from report_svc.metrics import index
from report_svc.metrics.period import Period
from report_svc.metrics.store import load_facts, load_release_changes, services_of_team
from report_svc.projections.facts import DoraIndex, FactVersion

log = structlog.get_logger(__name__)

# an index is stored at most this often per service (a busy service's facts change all the time); after a
# restart only the services whose facts changed since are built again
STORE_EVERY_SECONDS = 30.0
# small services built together from one read of their facts
BUILD_CHUNK = 8
LARGE_BUILD_SECONDS = 0.05  # a build longer than this: the next ones one service at a time

STORE = text(
    """
INSERT INTO report.dora_indexes (service, environment, version, format, body, built_at)
VALUES (:service, :environment, :version, :format, :body, now())
ON CONFLICT (service, environment) DO UPDATE
SET version = excluded.version, format = excluded.format, body = excluded.body, built_at = excluded.built_at
WHERE dora_indexes.version < excluded.version OR dora_indexes.format <> excluded.format
"""
)


@dataclass
class IndexCache:
    """Per-process, least recently used first out; keyed by (service, environment), valid for one version.
    With ``sessions``, builds worth keeping are also stored in ``dora_indexes`` (in the background)."""

    size: int = 2048
    sessions: async_sessionmaker[AsyncSession] | None = None
    store_every: float = STORE_EVERY_SECONDS
    entries: OrderedDict[tuple[str, str], tuple[int, index.ServiceIndex]] = field(default_factory=OrderedDict)
    building: asyncio.Lock = field(default_factory=asyncio.Lock)  # one build at a time: no service built twice
    writes: set[asyncio.Task[None]] = field(default_factory=set)
    stored_at: dict[tuple[str, str], float] = field(default_factory=dict)  # monotonic time of the last store
    built: int = 0  # indexes built from the facts by this process
    read: int = 0  # indexes read back from dora_indexes

    def get(self, key: tuple[str, str], version: int) -> index.ServiceIndex | None:
        hit = self.entries.get(key)
        if hit is None or hit[0] != version:
            return None
        self.entries.move_to_end(key)
        return hit[1]

    def put(self, key: tuple[str, str], version: int, value: index.ServiceIndex) -> None:
        self.entries[key] = (version, value)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def store_later(self, key: tuple[str, str], version: int, value: index.ServiceIndex) -> None:
        now = time.monotonic()
        last = self.stored_at.get(key)
        if self.sessions is None or (last is not None and now - last < self.store_every):
            return
        self.stored_at[key] = now
        task = asyncio.create_task(_store(self.sessions, key, version, value))
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)


async def _store(
    sessions: async_sessionmaker[AsyncSession], key: tuple[str, str], version: int, value: index.ServiceIndex
) -> None:
    """Best effort: an index that is not stored is built again after a restart, nothing more."""
    try:
        body = value.to_bytes()
        async with sessions() as session, session.begin():
            await session.execute(
                STORE,
                {"service": key[0], "environment": key[1], "version": version, "format": index.FORMAT, "body": body},
            )
    except Exception as exc:
        log.warning("dora.index_not_stored", service=key[0], environment=key[1], error=repr(exc))


async def scope(session: AsyncSession, *, service: str | None, team: str | None) -> set[str] | None:
    """The services asked for: one, a team's (from the catalogue), both intersected, or None for all."""
    services: set[str] | None = None
    if team is not None:
        services = await services_of_team(session, team)
    if service is not None:
        services = {service} if services is None else services & {service}
    return services


async def versions(session: AsyncSession, services: set[str] | None) -> dict[str, int]:
    stmt = select(FactVersion.service, func.sum(FactVersion.version)).group_by(FactVersion.service)
    if services is not None:
        stmt = stmt.where(FactVersion.service.in_(sorted(services)))
    return {service: int(v) for service, v in (await session.execute(stmt)).all()}


async def _stored(session: AsyncSession, environment: str, wanted: dict[str, int]) -> dict[str, index.ServiceIndex]:
    """The stored indexes of ``wanted`` (service -> version) that are of that version and of this format."""
    rows = await session.execute(
        select(DoraIndex.service, DoraIndex.version, DoraIndex.body).where(
            DoraIndex.environment == environment,
            DoraIndex.format == index.FORMAT,
            DoraIndex.service.in_(sorted(wanted)),
        )
    )
    found: dict[str, index.ServiceIndex] = {}
    for service, version, body in rows.all():
        if wanted.get(service) == version:
            try:
                found[service] = index.ServiceIndex.from_bytes(body)
            except (index.StaleFormat, ValueError, EOFError) as exc:  # rebuilt below
                log.warning("dora.stored_index_unreadable", service=service, error=repr(exc))
    return found


async def indexes(
    session: AsyncSession, cache: IndexCache, known: dict[str, int], environment: str
) -> list[index.ServiceIndex]:
    """The index of each service in ``known`` (service -> fact version), in service order."""
    found: dict[str, index.ServiceIndex] = {}
    missing: dict[str, int] = {}
    for service, version in known.items():
        hit = cache.get((service, environment), version)
        if hit is None:
            missing[service] = version
        else:
            found[service] = hit
    if missing:
        for service, ix in (await _stored(session, environment, missing)).items():
            cache.put((service, environment), missing.pop(service), ix)
            cache.read += 1
            found[service] = ix
    release_changes: dict[str, Any] | None = None
    pending = sorted(missing.items())
    size = BUILD_CHUNK
    while pending:
        chunk, pending = pending[:size], pending[size:]
        async with cache.building:
            todo: dict[str, int] = {}
            for service, version in chunk:
                hit = cache.get((service, environment), version)  # built meanwhile by a request or the warm-up
                if hit is None:
                    todo[service] = version
                else:
                    found[service] = hit
            if not todo:
                continue
            if release_changes is None:
                release_changes = await load_release_changes(session)
            # one read for the chunk (many small services cost a few queries, not a few each), split by service
            facts = await load_facts(
                session, services=set(todo), environments={environment}, release_changes=release_changes
            )
            started = time.perf_counter()
            built = await asyncio.to_thread(_build_each, facts, sorted(todo), environment)
            per_service = (time.perf_counter() - started) / len(todo)
            # large services one at a time, so that a request waits for one build at most, not for a chunk
            size = BUILD_CHUNK if per_service < LARGE_BUILD_SECONDS else 1
            for service, ix in built.items():
                key = (service, environment)
                cache.put(key, todo[service], ix)
                cache.built += 1
                cache.store_later(key, todo[service], ix)
                found[service] = ix
    return [found[s] for s in sorted(known)]


def _build_each(facts: f.Facts, services: list[str], environment: str) -> dict[str, index.ServiceIndex]:
    """Each service's index from its own facts only, as if they had been read for it alone."""
    if len(services) == 1:
        return {services[0]: index.build(facts, services[0], environment)}
    parts = {s: f.Facts([], [], [], [], {}, facts.release_changes) for s in services}
    for name in ("reports", "rollbacks", "incidents", "commits"):
        for item in getattr(facts, name):
            part = parts.get(item.service)
            if part is not None:
                getattr(part, name).append(item)
    for change_id, change in facts.changes.items():
        part = parts.get(change.service)
        if part is not None:
            part.changes[change_id] = change
    return {s: index.build(parts[s], s, environment) for s in services}


async def dora_figures(
    session: AsyncSession,
    *,
    service: str | None,
    team: str | None,
    environment: str,
    period: Period,
    cache: IndexCache | None = None,
) -> dict[str, Any]:
    environment = f.normalise_environment(environment)
    cache = cache if cache is not None else IndexCache()
    services = await scope(session, service=service, team=team)
    known = await versions(session, services)  # read before the facts: a later change means a later rebuild
    return index.dora(await indexes(session, cache, known, environment), period.start, period.end)


async def warm(sessions: async_sessionmaker[AsyncSession], cache: IndexCache, environment: str = "production") -> None:
    """Fill ``cache`` with the index of every service in ``environment`` (read back where stored, else built)."""
    started = time.perf_counter()
    try:
        async with sessions() as session:
            known = await versions(session, None)
            await indexes(session, cache, known, environment)
        log.info(
            "dora.warm",
            services=len(known),
            built=cache.built,
            read=cache.read,
            seconds=round(time.perf_counter() - started, 2),
        )
    except Exception as exc:  # requests build what they need themselves
        log.warning("dora.warm_failed", error=repr(exc))
