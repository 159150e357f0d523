"""METRICS.md as pure functions: plain facts in, plain figures out, no I/O.

Every figure is a function of the *set* of facts, never of their arrival order: inputs are sorted on a total key
before anything is decided, and merges (reports of one deployment) are connected components, which do not depend
on the order their edges were found in.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

MERGE_WINDOW = timedelta(minutes=15)
Level = Literal["elite", "high", "medium", "low"]
LEVEL_ORDER: dict[str, int] = {"elite": 0, "high": 1, "medium": 2, "low": 3}
PRODUCTION_ALIASES = {"prod": "production", "prd": "production"}


def normalise_environment(name: str) -> str:
    """``prod`` and ``prd`` in CI events mean ``production`` (API.md, release-svc)."""
    return PRODUCTION_ALIASES.get(name.lower(), name)


# --- facts ---


# The facts and deployments are NamedTuples: a history holds millions of them, and a tuple is made three times
# faster than a frozen dataclass.


class Report(NamedTuple):
    """One source's report of a deployment outcome."""

    key: str
    service: str
    environment: str
    at: datetime
    outcome: str  # success | failure
    commit: str | None = None
    version: str | None = None
    source: str = ""
    change_id: str | None = None
    release_id: str | None = None


class Deployment(NamedTuple):
    """One deployment: the reports of the same deployment merged (METRICS.md, 15-minute rule)."""

    id: str
    service: str
    environment: str
    at: datetime
    outcome: str
    commit: str | None = None
    version: str | None = None
    sources: frozenset[str] = frozenset()
    change_ids: frozenset[str] = frozenset()
    release_ids: frozenset[str] = frozenset()
    reports: int = 1

    @property
    def succeeded(self) -> bool:
        return self.outcome == "success"


class Rollback(NamedTuple):
    service: str
    environment: str
    at: datetime


class Incident(NamedTuple):
    id: str
    service: str
    environment: str
    start: datetime | None
    end: datetime | None = None
    version: str | None = None
    commit: str | None = None


class CommitFact(NamedTuple):
    """A change for lead time: a commit pushed to the default branch, or a merged CDEvents change."""

    key: str
    service: str
    timestamp: datetime  # when the change started (the commit's own timestamp)
    pushed_at: datetime
    sha: str | None = None


@dataclass(frozen=True)
class ChangeFact:
    change_id: str
    service: str
    environment: str
    type: str
    approved: bool
    planned_start: datetime | None = None
    planned_end: datetime | None = None


# --- statistics ---


def percentile(values: Sequence[float], q: float, *, presorted: bool = False) -> float | None:
    """The q-quantile by linear interpolation between closest ranks (PostgreSQL ``percentile_cont``)."""
    if not values:
        return None
    ordered = values if presorted else sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 0.5)


def hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


# --- deployments ---


def _same_deployment(a: Report, b: Report) -> bool:
    """Same commit SHA; or, where a report has no SHA, the same version."""
    if a.commit and b.commit:
        return a.commit == b.commit
    return bool(a.version) and a.version == b.version


def _finder(parent: list[int]) -> Any:
    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    return find


def merge_reports(reports: Iterable[Report]) -> list[Deployment]:
    """Reports of one service and environment that are the same deployment within 15 minutes of each other are
    one deployment (transitively); its outcome is ``failure`` if any report says so, its time the earliest."""
    unique = {r.key: r for r in reports}
    by_target: dict[tuple[str, str], list[Report]] = defaultdict(list)
    for r in unique.values():
        by_target[(r.service, r.environment)].append(r)
    deployments: list[Deployment] = []
    for group in by_target.values():
        group.sort(key=lambda r: (r.at, r.key))
        parent = list(range(len(group)))
        find = _finder(parent)
        for i, a in enumerate(group):
            for j in range(i + 1, len(group)):
                b = group[j]
                if b.at - a.at > MERGE_WINDOW:
                    break
                if _same_deployment(a, b):
                    ri, rj = find(i), find(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
        members: dict[int, list[Report]] = defaultdict(list)
        for i, r in enumerate(group):
            members[find(i)].append(r)
        for rs in members.values():
            first = rs[0]  # earliest (group is sorted)
            if len(rs) == 1:  # most deployments have one report: the same values as below, made directly
                deployments.append(
                    Deployment(
                        first.key,
                        first.service,
                        first.environment,
                        first.at,
                        "success" if first.outcome == "success" else "failure",
                        first.commit or None,
                        first.version or None,
                        frozenset((first.source,)) if first.source else frozenset(),
                        frozenset((first.change_id,)) if first.change_id else frozenset(),
                        frozenset((first.release_id,)) if first.release_id else frozenset(),
                        1,
                    )
                )
                continue
            deployments.append(
                Deployment(
                    id=first.key,
                    service=first.service,
                    environment=first.environment,
                    at=first.at,
                    outcome="failure" if any(r.outcome != "success" for r in rs) else "success",
                    commit=min((r.commit for r in rs if r.commit), default=None),
                    version=min((r.version for r in rs if r.version), default=None),
                    sources=frozenset(r.source for r in rs if r.source),
                    change_ids=frozenset(r.change_id for r in rs if r.change_id),
                    release_ids=frozenset(r.release_id for r in rs if r.release_id),
                    reports=len(rs),
                )
            )
    deployments.sort(key=lambda d: (d.at, d.id))
    return deployments


@dataclass
class Timeline:
    """Everything decided about the deployments of a set of facts, by deployment id."""

    deployments: list[Deployment]
    next_success: dict[str, datetime | None] = field(default_factory=dict)
    rolled_back: dict[str, bool] = field(default_factory=dict)
    incident_link: dict[str, str | None] = field(default_factory=dict)  # incident id -> deployment id
    linked_incidents: dict[str, int] = field(default_factory=dict)

    def failed(self, d: Deployment) -> bool:
        return not d.succeeded or self.rolled_back.get(d.id, False) or self.linked_incidents.get(d.id, 0) > 0


def _by_target(items: Iterable[Any]) -> dict[tuple[str, str], list[Any]]:
    out: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for item in items:
        out[(item.service, item.environment)].append(item)
    return out


class IncidentLinker:
    """Links incidents to the deployments of one service and environment (sorted by time), as ``link_incident``
    says, with the lookups made once: deployments by SHA and by version, and the successes' times."""

    def __init__(self, deployments: Sequence[Deployment]) -> None:
        self.by_commit: dict[str, list[Deployment]] = defaultdict(list)
        self.by_version: dict[str, list[Deployment]] = defaultdict(list)
        for d in deployments:
            if d.commit:
                self.by_commit[d.commit].append(d)
            if d.version:
                self.by_version[d.version].append(d)
        self.successes = [d for d in deployments if d.outcome == "success"]
        self.success_times = [d.at for d in self.successes]

    def link(self, incident: Incident) -> str | None:
        def pick(candidates: list[Deployment]) -> Deployment | None:
            if not candidates:
                return None
            if incident.start is not None:
                before = [d for d in candidates if d.at <= incident.start]
                if before:
                    return before[-1]
                return candidates[0]
            return candidates[-1]

        named = None
        if incident.commit:
            named = pick(self.by_commit.get(incident.commit, []))
        if named is None and incident.version:
            named = pick(self.by_version.get(incident.version, []))
        if named is not None:
            return named.id
        if incident.start is None:
            return None
        # the latest success at or before the start: the last of the sorted successes not after it
        i = bisect_right(self.success_times, incident.start)
        return self.successes[i - 1].id if i else None


def link_incident(incident: Incident, deployments: Sequence[Deployment]) -> str | None:
    """The deployment an incident names (by SHA, else version), else the latest successful one at or before its
    start. ``deployments`` are those of the incident's service and environment, sorted by time."""
    return IncidentLinker(deployments).link(incident)


def timeline(reports: Iterable[Report], rollbacks: Iterable[Rollback], incidents: Iterable[Incident]) -> Timeline:
    deployments = merge_reports(reports)
    result = Timeline(deployments)
    rollbacks_by = _by_target(rollbacks)
    deployments_by = _by_target(deployments)
    for target, ds in deployments_by.items():
        successes = [d.at for d in ds if d.succeeded]  # sorted: ds is
        backs = sorted(r.at for r in rollbacks_by.get(target, []))
        for d in ds:
            i = bisect_right(successes, d.at)
            nxt = successes[i] if i < len(successes) else None
            result.next_success[d.id] = nxt
            # a rollback at or after the deployment and before the next success
            j = bisect_left(backs, d.at)
            result.rolled_back[d.id] = j < len(backs) and (nxt is None or backs[j] < nxt)
    linkers: dict[tuple[str, str], IncidentLinker] = {}
    for incident in sorted(incidents, key=lambda i: i.id):
        target = (incident.service, incident.environment)
        linker = linkers.get(target)
        if linker is None:
            linker = linkers[target] = IncidentLinker(deployments_by.get(target, []))
        linked = linker.link(incident)
        result.incident_link[incident.id] = linked
        if linked is not None:
            result.linked_incidents[linked] = result.linked_incidents.get(linked, 0) + 1
    return result


class Deliveries:
    """Finds the delivering deployment of commits quickly: one service and environment's successes, sorted."""

    def __init__(self, deployments: Sequence[Deployment]) -> None:
        self.successes = [d for d in deployments if d.succeeded]
        self.times = [d.at for d in self.successes]
        self.first_by_sha: dict[str, Deployment] = {}
        for d in self.successes:
            if d.commit is not None:
                self.first_by_sha.setdefault(d.commit, d)

    def of(self, commit: CommitFact) -> Deployment | None:
        i = bisect_left(self.times, commit.pushed_at)
        after_push = self.successes[i] if i < len(self.successes) else None
        by_sha = self.first_by_sha.get(commit.sha) if commit.sha is not None else None
        if after_push is None or by_sha is None:
            return after_push if by_sha is None else by_sha
        # the earlier; on a tie of (time, id) the first found after the push
        return after_push if (after_push.at, after_push.id) <= (by_sha.at, by_sha.id) else by_sha


def delivering_deployment(commit: CommitFact, deployments: Sequence[Deployment]) -> Deployment | None:
    """The first successful deployment of the commit's service whose SHA is the commit, or whose time is at or
    after the commit's push time — whichever is earlier. ``deployments``: one service and environment, sorted."""
    return Deliveries(sorted(deployments, key=lambda d: (d.at, d.id))).of(commit)


# --- changes linked to deployments (traceability, rework) ---


def delivered_changes(
    d: Deployment,
    changes: dict[str, ChangeFact],
    release_changes: dict[str, Sequence[str]],
    candidates: Iterable[ChangeFact] | None = None,
) -> list[ChangeFact]:
    """The changes a deployment delivers: named in its reports, in a release it deploys (for its service), or the
    single approved change of its service and environment whose planned window covers its time."""
    found: dict[str, ChangeFact] = {}
    for cid in d.change_ids:
        if cid in changes:
            found[cid] = changes[cid]
    for rid in d.release_ids:
        for cid in release_changes.get(rid, ()):
            c = changes.get(cid)
            if c is not None and c.service == d.service:
                found[cid] = c
    if not found:
        covering = [
            c
            for c in (changes.values() if candidates is None else candidates)
            if c.approved
            and c.service == d.service
            and c.environment == d.environment
            and c.planned_start is not None
            and c.planned_end is not None
            and c.planned_start <= d.at <= c.planned_end
        ]
        if len(covering) == 1:
            found[covering[0].change_id] = covering[0]
    return [found[k] for k in sorted(found)]


def traceable(d: Deployment, changes: dict[str, ChangeFact], release_changes: dict[str, Sequence[str]]) -> bool:
    return any(c.approved for c in delivered_changes(d, changes, release_changes))


# --- levels ---


def frequency_level(per_day: float | None) -> Level | None:
    if per_day is None:
        return None
    if per_day >= 1:
        return "elite"
    if per_day >= 1 / 7:
        return "high"
    if per_day >= 1 / 30:
        return "medium"
    return "low"


def lead_time_level(median_hours: float | None) -> Level | None:
    if median_hours is None:
        return None
    if median_hours < 24:
        return "elite"
    if median_hours < 168:
        return "high"
    if median_hours < 730:
        return "medium"
    return "low"


def failure_rate_level(rate: float | None) -> Level | None:
    if rate is None:
        return None
    if rate <= 0.05:
        return "elite"
    if rate <= 0.10:
        return "high"
    if rate <= 0.15:
        return "medium"
    return "low"


def restore_level(median_hours: float | None) -> Level | None:
    if median_hours is None:
        return None
    if median_hours < 1:
        return "elite"
    if median_hours < 24:
        return "high"
    if median_hours < 168:
        return "medium"
    return "low"


def performance_level(*levels: str | None) -> str | None:
    """The worst of the non-null levels; null when all are null."""
    known = [lv for lv in levels if lv is not None]
    return max(known, key=lambda lv: LEVEL_ORDER[lv]) if known else None


# --- DORA ---


@dataclass(frozen=True)
class Facts:
    reports: Sequence[Report] = ()
    rollbacks: Sequence[Rollback] = ()
    incidents: Sequence[Incident] = ()
    commits: Sequence[CommitFact] = ()
    changes: dict[str, ChangeFact] = field(default_factory=dict)
    release_changes: dict[str, Sequence[str]] = field(default_factory=dict)


def lead_times(
    commits: Iterable[CommitFact],
    deployments: Iterable[Deployment],
    *,
    services: set[str] | None,
    environment: str,
    start: datetime,
    end: datetime,
) -> list[float]:
    """Hours from each commit to its delivering deployment, for those delivered in [start, end); values <= 0
    are dropped."""
    by_target: dict[tuple[str, str], list[Deployment]] = defaultdict(list)
    for d in sorted(deployments, key=lambda d: (d.at, d.id)):
        if d.environment == environment:
            by_target[(d.service, d.environment)].append(d)
    finders = {target: Deliveries(ds) for target, ds in by_target.items()}
    nobody = Deliveries([])
    leads: list[float] = []
    for c in sorted(commits, key=lambda c: (c.service, c.key)):
        if services is not None and c.service not in services:
            continue
        delivered = finders.get((c.service, environment), nobody).of(c)
        if delivered is None or not (start <= delivered.at < end):
            continue
        lead = hours(delivered.at - c.timestamp)
        if lead > 0:
            leads.append(lead)
    return leads


def _ratio(n: int, d: int) -> float | None:
    return n / d if d else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def dora(
    facts: Facts,
    *,
    services: set[str] | None,
    environment: str,
    start: datetime,
    end: datetime,
    tl: Timeline | None = None,
) -> dict[str, Any]:
    """The DORA figures of METRICS.md for ``services`` (None: all) in ``environment`` over [start, end)."""
    tl = tl or timeline(facts.reports, facts.rollbacks, facts.incidents)

    def mine(service: str, env: str) -> bool:
        return env == environment and (services is None or service in services)

    all_here = [d for d in tl.deployments if mine(d.service, d.environment)]
    in_period = [d for d in all_here if start <= d.at < end]
    successes = [d for d in in_period if d.succeeded]

    # deployment frequency
    days = (end - start).total_seconds() / 86400
    per_day = len(successes) / days if successes and days > 0 else None
    frequency = {
        "deployments": len(successes),
        "deploy_days": len({d.at.astimezone(UTC).date() for d in successes}),
        "per_day": _round(per_day),
        "level": frequency_level(per_day),
    }

    # lead time for changes
    leads = lead_times(facts.commits, all_here, services=services, environment=environment, start=start, end=end)
    lead_median = median(leads)
    lead_time = {
        "median_hours": _round(lead_median),
        "p90_hours": _round(percentile(leads, 0.9)),
        "changes": len(leads),
        "level": lead_time_level(lead_median),
    }

    # change failure rate
    failed = [d for d in in_period if tl.failed(d)]
    rate = _ratio(len(failed), len(in_period))
    failure = {
        "failed_deployments": len(failed),
        "deployments": len(in_period),
        "rate": _round(rate),
        "level": failure_rate_level(rate),
    }

    # time to restore
    restored = [
        hours(i.end - i.start)
        for i in facts.incidents
        if mine(i.service, i.environment) and i.start is not None and i.end is not None and start <= i.end < end
    ]
    restore_median = median(restored)
    restore = {
        "median_hours": _round(restore_median),
        "incidents": len(restored),
        "level": restore_level(restore_median),
    }

    # failed deployment recovery time
    recoveries = []
    for d in failed:
        nxt = tl.next_success.get(d.id)
        if nxt is not None:
            recoveries.append(hours(nxt - d.at))
    recovery = {"median_hours": _round(median(recoveries)), "samples": len(recoveries)}

    # rework rate
    open_by_service: dict[str, list[Incident]] = defaultdict(list)
    for i in facts.incidents:
        if mine(i.service, i.environment) and i.start is not None:
            open_by_service[i.service].append(i)
    changes_by_target = _by_target(facts.changes.values())

    def rework(d: Deployment) -> bool:
        delivered = delivered_changes(
            d, facts.changes, facts.release_changes, candidates=changes_by_target.get((d.service, d.environment), [])
        )
        if any(c.type == "emergency" for c in delivered):
            return True
        return any(
            i.start is not None and i.start <= d.at and (i.end is None or d.at < i.end)
            for i in open_by_service.get(d.service, [])
        )

    reworked = [d for d in successes if rework(d)]
    rework_rate = {
        "rework_deployments": len(reworked),
        "deployments": len(successes),
        "rate": _round(_ratio(len(reworked), len(successes))),
    }

    return {
        "deployment_frequency": frequency,
        "lead_time_for_changes": lead_time,
        "change_failure_rate": failure,
        "time_to_restore": restore,
        "failed_deployment_recovery_time": recovery,
        "rework_rate": rework_rate,
        "performance_level": performance_level(
            frequency["level"], lead_time["level"], failure["level"], restore["level"]
        ),
    }


# --- green zone ---


@dataclass(frozen=True)
class Window:
    environment: str
    days: frozenset[str]
    start: time
    end: time
    timezone: str


@dataclass(frozen=True)
class Freeze:
    start: datetime
    end: datetime
    environments: frozenset[str]
    services: frozenset[str]  # empty: every service


@dataclass(frozen=True)
class GateDecisionFact:
    service: str
    environment: str
    decision: str
    reasons: frozenset[str]
    at: datetime


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def inside_window(at: datetime, environment: str, windows: Sequence[Window]) -> bool:
    """An environment with no window is open at all times."""
    mine = [w for w in windows if w.environment == environment]
    if not mine:
        return True
    for w in mine:
        local = at.astimezone(ZoneInfo(w.timezone))
        if WEEKDAYS[local.weekday()] in w.days and w.start <= local.time() < w.end:
            return True
    return False


def frozen(at: datetime, service: str, environment: str, freezes: Sequence[Freeze]) -> bool:
    return any(
        f.start <= at < f.end and environment in f.environments and (not f.services or service in f.services)
        for f in freezes
    )


def green(
    d: Deployment, windows: Sequence[Window], freezes: Sequence[Freeze], decisions: Sequence[GateDecisionFact]
) -> bool:
    """Inside a deployment window, outside every freeze, after an ``allow`` without ``EMERGENCY_OVERRIDE`` (the
    latest gate decision for the service and environment at or before the deployment)."""
    prior = [g for g in decisions if g.service == d.service and g.environment == d.environment and g.at <= d.at]
    if not prior:
        return False
    latest = max(prior, key=lambda g: (g.at, g.decision))
    if latest.decision != "allow" or "EMERGENCY_OVERRIDE" in latest.reasons:
        return False
    return inside_window(d.at, d.environment, windows) and not frozen(d.at, d.service, d.environment, freezes)


# --- release assessment ---


@dataclass(frozen=True)
class ReleaseDeploymentFact:
    succeeded: bool
    rolled_back: bool
    green: bool
    at: datetime


@dataclass(frozen=True)
class ReleaseIncidentFact:
    start: datetime | None
    end: datetime | None


def assessment(
    *,
    change_outcomes: dict[str, str],
    deployments: Sequence[ReleaseDeploymentFact],
    services_passing: int,
    services: int,
    deploy_milestone: datetime | None,
    els_start: datetime | None,
    els_end: datetime | None,
    incidents: Sequence[ReleaseIncidentFact],
) -> dict[str, Any]:
    """The release assessment score of METRICS.md. ``change_outcomes``: change id → ``successful``, ``failed``,
    ``rolled_back``, ``cancelled`` or ``pending``; ``incidents``: those linked to the release's production
    deployments."""
    not_cancelled = [o for o in change_outcomes.values() if o != "cancelled"]
    c = sum(1 for o in not_cancelled if o == "successful") / len(not_cancelled) if not_cancelled else 1.0
    d = sum(1 for x in deployments if x.succeeded and not x.rolled_back) / len(deployments) if deployments else 0.0
    g = sum(1 for x in deployments if x.green) / len(deployments) if deployments else 1.0
    q = services_passing / services if services else 0.0
    first = min((x.at for x in deployments if x.succeeded), default=None)
    if first is None or deploy_milestone is None or first <= deploy_milestone:
        s = 1.0
    else:
        days_late = (first - deploy_milestone).total_seconds() / 86400
        s = max(0.0, 1 - days_late / 14)
    during = [
        i
        for i in incidents
        if i.start is not None
        and (els_start is None or i.start >= els_start)
        and (els_end is None or i.start < els_end)
    ]
    if not during:
        e = 1.0
    elif all(i.end is not None and (els_end is None or i.end <= els_end) for i in during):
        e = 0.5
    else:
        e = 0.0
    score = round(100 * (0.30 * c + 0.20 * d + 0.15 * g + 0.15 * q + 0.10 * s + 0.10 * e))
    return {
        "score": int(score),
        "components": {k: round(v, 4) for k, v in {"C": c, "D": d, "G": g, "Q": q, "S": s, "E": e}.items()},
    }
