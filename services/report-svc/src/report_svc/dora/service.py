"""The DORA use case: which services, then the figures from each service's cached index.

A service's index (``metrics/index.py``) is rebuilt from its facts when ``fact_versions`` says they changed since
it was built; unchanged services are answered from memory. The figures equal ``formulas.dora`` over the facts.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from report_svc.metrics import formulas as f
from report_svc.metrics import index
from report_svc.metrics.period import Period
from report_svc.metrics.store import load_facts, services_of_team
from report_svc.projections.facts import FactVersion


@dataclass
class IndexCache:
    """Per-process, least recently used first out; keyed by (service, environment), valid for one version."""

    size: int = 2048
    entries: OrderedDict[tuple[str, str], tuple[int, index.ServiceIndex]] = field(default_factory=OrderedDict)

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


async def service_index(
    session: AsyncSession, cache: IndexCache, service: str, environment: str, version: int
) -> index.ServiceIndex:
    key = (service, environment)
    cached = cache.get(key, version)
    if cached is None:
        facts = await load_facts(session, services={service}, environments={environment})
        cached = index.build(facts, service, environment)
        cache.put(key, version, cached)
    return cached


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
    indexes = [await service_index(session, cache, s, environment, v) for s, v in sorted(known.items())]
    return index.dora(indexes, period.start, period.end)
