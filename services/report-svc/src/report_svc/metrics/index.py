"""The DORA figures of any period from a per-service index: the same formulas, decided once per set of facts.

``formulas.dora`` decides everything from the facts at each call. Here the per-deployment and per-commit decisions
(merged deployments, failed or not, rework or not, next success, each commit's delivery and lead time) are made
once for a service and environment, kept sorted by time, and a period is a pair of binary searches. The index is
rebuilt whenever that service's facts change (``fact_versions``), so it is still a function of the facts only.
``tests/unit/test_index.py`` checks it against ``formulas.dora`` on generated histories.

An index is a handful of flat arrays (times in microseconds since the epoch, flags, hours), so it is small in
memory and its bytes can be stored and read back as they are (``to_bytes``/``from_bytes``): a restarted service
reads the indexes of unchanged facts instead of deciding everything again.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress
from typing import Any

from report_svc.metrics import formulas as f

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# bumped whenever what an index holds, or how it is decided, changes: stored indexes of another format are rebuilt
FORMAT = 1
SUCCEEDED, FAILED, REWORK = 1, 2, 4
_COUNTS = struct.Struct("<HIII")  # format, deployments, deliveries, restores
_LAYOUT = (  # (attribute, typecode, which count)
    ("deployment_times", "q", 0),
    ("days", "i", 0),
    ("flags", "B", 0),
    ("recovery_hours", "d", 0),
    ("delivery_times", "q", 1),
    ("leads", "d", 1),
    ("restore_times", "q", 2),
    ("restores", "d", 2),
)
assert all(array(code).itemsize == size for code, size in (("q", 8), ("i", 4), ("B", 1), ("d", 8)))


# bytes.translate tables: a deployment's flags byte -> 1 if it succeeded (failed), else 0
_SUCCEEDED_MASK = bytes(1 if f & SUCCEEDED else 0 for f in range(256))
_FAILED_MASK = bytes(1 if f & FAILED else 0 for f in range(256))


def micros(at: datetime) -> int:
    """Exact microseconds since the epoch (a float timestamp would round)."""
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class StaleFormat(ValueError):
    """Stored bytes of another index format."""


@dataclass
class ServiceIndex:
    """One service in one environment: its deployments (flags, UTC day, hours to recover), its commits' deliveries
    (lead time in hours) and its incidents' restores (hours), each sorted by time."""

    deployment_times: array[int]
    days: array[int]  # the UTC date's ordinal, for deploy days
    flags: array[int]  # SUCCEEDED | FAILED | REWORK
    recovery_hours: array[float]  # to the next success, for a failed one that recovered; NaN otherwise
    delivery_times: array[int]  # of the commits' delivering deployments
    leads: array[float]  # hours, > 0, aligned with delivery_times
    restore_times: array[int]  # incident ends
    restores: array[float]  # hours, aligned

    @property
    def deployments(self) -> int:
        return len(self.deployment_times)

    def to_bytes(self) -> bytes:
        counts = (len(self.deployment_times), len(self.delivery_times), len(self.restore_times))
        parts = [_COUNTS.pack(FORMAT, *counts)]
        for name, _, _ in _LAYOUT:
            values: array[Any] = getattr(self, name)
            if sys.byteorder == "big":
                values = array(values.typecode, values)
                values.byteswap()
            parts.append(values.tobytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> ServiceIndex:
        version, *counts = _COUNTS.unpack_from(data)
        if version != FORMAT:
            raise StaleFormat(f"index format {version}, not {FORMAT}")
        view = memoryview(data)[_COUNTS.size :]
        fields: dict[str, array[Any]] = {}
        for name, code, which in _LAYOUT:
            values = array(code)
            size = counts[which] * values.itemsize
            values.frombytes(view[:size])
            if sys.byteorder == "big":
                values.byteswap()
            fields[name] = values
            view = view[size:]
        return cls(**fields)


def build(facts: f.Facts, service: str, environment: str) -> ServiceIndex:
    tl = f.timeline(facts.reports, facts.rollbacks, facts.incidents)
    mine = [d for d in tl.deployments if d.service == service and d.environment == environment]
    by_target = f._by_target(facts.changes.values())
    # rework by incident: an incident open at the deployment (start <= at < end, or not ended). Sorted by start,
    # the incidents started by a time are a prefix; one of them is still open iff the latest end among them is
    # later (an open-ended one counts as the latest of all).
    starts = sorted(
        (i.start, i.end)
        for i in facts.incidents
        if i.service == service and i.environment == environment and i.start is not None
    )
    start_times = [start for start, _ in starts]
    latest_end: list[datetime | None] = []  # None: one of them has not ended
    for _, end in starts:
        before = latest_end[-1] if latest_end else end
        latest_end.append(None if end is None or before is None else max(before, end))
    ix = ServiceIndex(array("q"), array("i"), array("B"), array("d"), array("q"), array("d"), array("q"), array("d"))
    for d in mine:
        failed = tl.failed(d)
        nxt = tl.next_success.get(d.id)
        candidates = by_target.get((d.service, d.environment), [])
        # nothing named and no change of the service planned: delivers nothing (delivered_changes would say so)
        delivered = (
            f.delivered_changes(d, facts.changes, facts.release_changes, candidates=candidates)
            if d.change_ids or d.release_ids or candidates
            else []
        )
        rework = False
        if d.outcome == "success":
            started = bisect_right(start_times, d.at)
            latest = latest_end[started - 1] if started else d.at
            rework = any(c.type == "emergency" for c in delivered) or latest is None or d.at < latest
        ix.deployment_times.append(micros(d.at))
        ix.days.append(d.at.astimezone(UTC).toordinal())
        ix.flags.append((SUCCEEDED if d.succeeded else 0) | (FAILED if failed else 0) | (REWORK if rework else 0))
        ix.recovery_hours.append(f.hours(nxt - d.at) if failed and nxt is not None else math.nan)
    finder = f.Deliveries(mine)
    deliveries = []
    for c in facts.commits:
        if c.service != service:
            continue
        delivered_by = finder.of(c)
        if delivered_by is not None:
            lead = f.hours(delivered_by.at - c.timestamp)
            if lead > 0:
                deliveries.append((micros(delivered_by.at), lead))
    deliveries.sort()
    ix.delivery_times.extend(t for t, _ in deliveries)
    ix.leads.extend(v for _, v in deliveries)
    restores = sorted(
        (micros(i.end), f.hours(i.end - i.start))
        for i in facts.incidents
        if i.service == service and i.environment == environment and i.start is not None and i.end is not None
    )
    ix.restore_times.extend(t for t, _ in restores)
    ix.restores.extend(v for _, v in restores)
    return ix


def dora(indexes: Iterable[ServiceIndex], start: datetime, end: datetime) -> dict[str, Any]:
    """``formulas.dora`` over the union of ``indexes`` for [start, end)."""
    lo_at, hi_at = micros(start), micros(end)
    leads: list[float] = []
    restores: list[float] = []
    deployments = successes = failed_count = reworked = 0
    days: set[int] = set()
    recoveries: list[float] = []
    for ix in indexes:
        lo, hi = bisect_left(ix.delivery_times, lo_at), bisect_left(ix.delivery_times, hi_at)
        leads.extend(ix.leads[lo:hi])
        lo, hi = bisect_left(ix.restore_times, lo_at), bisect_left(ix.restore_times, hi_at)
        restores.extend(ix.restores[lo:hi])
        lo, hi = bisect_left(ix.deployment_times, lo_at), bisect_left(ix.deployment_times, hi_at)
        if lo == hi:
            continue
        # the hot part of /dora for all services, in C: counts of each flag combination, then the days of the
        # successes and the recoveries of the failures picked out with masks
        flags = ix.flags[lo:hi].tobytes()
        deployments += hi - lo
        for combo in range(8):
            n = flags.count(combo)
            if combo & SUCCEEDED:
                successes += n
                if combo & REWORK:
                    reworked += n
            if combo & FAILED:
                failed_count += n
        days.update(compress(ix.days[lo:hi], flags.translate(_SUCCEEDED_MASK)))
        recoveries.extend(r for r in compress(ix.recovery_hours[lo:hi], flags.translate(_FAILED_MASK)) if r == r)
    period_days = (end - start).total_seconds() / 86400
    per_day = successes / period_days if successes and period_days > 0 else None
    rate = failed_count / deployments if deployments else None
    leads.sort()  # once, for both quantiles
    lead_median = f.percentile(leads, 0.5, presorted=True)
    restore_median = f.median(restores)
    frequency = {
        "deployments": successes,
        "deploy_days": len(days),
        "per_day": f._round(per_day),
        "level": f.frequency_level(per_day),
    }
    lead_time = {
        "median_hours": f._round(lead_median),
        "p90_hours": f._round(f.percentile(leads, 0.9, presorted=True)),
        "changes": len(leads),
        "level": f.lead_time_level(lead_median),
    }
    failure = {
        "failed_deployments": failed_count,
        "deployments": deployments,
        "rate": f._round(rate),
        "level": f.failure_rate_level(rate),
    }
    restore = {
        "median_hours": f._round(restore_median),
        "incidents": len(restores),
        "level": f.restore_level(restore_median),
    }
    return {
        "deployment_frequency": frequency,
        "lead_time_for_changes": lead_time,
        "change_failure_rate": failure,
        "time_to_restore": restore,
        "failed_deployment_recovery_time": {"median_hours": f._round(f.median(recoveries)), "samples": len(recoveries)},
        "rework_rate": {
            "rework_deployments": reworked,
            "deployments": successes,
            "rate": f._round(reworked / successes if successes else None),
        },
        "performance_level": f.performance_level(
            frequency["level"], lead_time["level"], failure["level"], restore["level"]
        ),
    }
