"""One hand-computed case per METRICS.md definition."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from report_svc.metrics.formulas import (
    ChangeFact,
    CommitFact,
    Deployment,
    Facts,
    Freeze,
    GateDecisionFact,
    Incident,
    ReleaseDeploymentFact,
    ReleaseIncidentFact,
    Report,
    Rollback,
    Window,
    assessment,
    delivering_deployment,
    dora,
    failure_rate_level,
    frequency_level,
    green,
    lead_time_level,
    link_incident,
    median,
    merge_reports,
    percentile,
    performance_level,
    restore_level,
    timeline,
)

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
FROM, TO = T0, T0 + timedelta(days=30)


def h(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def rep(key: str, at: datetime, outcome: str = "success", sha: str | None = None, **kw: object) -> Report:
    return Report(
        key=key,
        service=str(kw.pop("service", "api")),
        environment=str(kw.pop("environment", "production")),
        at=at,
        outcome=outcome,
        commit=sha,
        **kw,  # type: ignore[arg-type]
    )


def figures(facts: Facts, services: set[str] | None = None) -> dict[str, object]:
    return dora(facts, services=services or {"api"}, environment="production", start=FROM, end=TO)


# --- statistics: linear interpolation ---


def test_percentiles_interpolate_linearly_between_ranks() -> None:
    assert median([1.0, 2.0, 3.0, 4.0]) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)  # rank 2.7: 3 + 0.7 x (4 - 3)
    assert percentile([10.0], 0.9) == 10.0
    assert median([]) is None


# --- the 15-minute merge ---


def test_reports_of_one_deployment_within_15_minutes_merge_and_failure_wins() -> None:
    reports = [
        rep("gh", h(0), sha="abc", source="github"),
        rep("rel", h(0) + timedelta(minutes=10), "failure", sha="abc", source="release-svc"),
        rep("cd", h(0) + timedelta(minutes=24), sha="abc", source="cdevents"),  # 14 min after the second: chained
        rep("late", h(0) + timedelta(minutes=40), sha="abc"),  # 16 min after the last: a new deployment
    ]
    merged = merge_reports(reversed(reports))
    assert [(d.id, d.outcome, d.reports, d.at) for d in merged] == [
        ("gh", "failure", 3, h(0)),
        ("late", "success", 1, h(0) + timedelta(minutes=40)),
    ]


def test_reports_without_sha_merge_on_version_and_different_shas_do_not() -> None:
    reports = [
        rep("a", h(0), sha="abc", version="1.0"),
        rep("b", h(0) + timedelta(minutes=5), version="1.0"),  # no SHA: same version is enough
        rep("c", h(0) + timedelta(minutes=6), sha="def", version="2.0"),
        rep("d", h(0) + timedelta(minutes=7), sha="abc", service="web"),  # another service
    ]
    merged = merge_reports(reports)
    assert sorted((d.service, d.id, d.reports) for d in merged) == [("api", "a", 2), ("api", "c", 1), ("web", "d", 1)]


# --- deployment frequency ---


def test_deployment_frequency_counts_successes_days_and_per_day() -> None:
    # 12 successful deployments on 9 distinct days in 30 days; one failure is not counted
    days = [0, 0, 1, 2, 2, 3, 5, 8, 8, 13, 21, 29]
    reports = [rep(f"d{i}", h(24 * d + i), sha=f"s{i}") for i, d in enumerate(days)]
    reports.append(rep("f", h(24 * 4), "failure", sha="sf"))
    reports.append(rep("outside", TO, sha="x"))  # the period is [from, to)
    df = figures(Facts(reports=reports))["deployment_frequency"]
    assert df == {"deployments": 12, "deploy_days": 9, "per_day": 0.4, "level": "high"}


# --- lead time for changes ---


def test_delivering_deployment_is_the_earlier_of_sha_match_and_first_after_push() -> None:
    deployments = merge_reports(
        [rep("d1", h(1), sha="other"), rep("d2", h(5), sha="c1"), rep("f", h(3), "failure", sha="c2")]
    )
    pushed_late = CommitFact("c1", "api", timestamp=h(0), pushed_at=h(6), sha="c1")  # its SHA went out at 5 h
    pushed_early = CommitFact("c3", "api", timestamp=h(0), pushed_at=h(2), sha="c3")  # failures do not deliver
    assert delivering_deployment(pushed_late, deployments).id == "d2"  # type: ignore[union-attr]
    assert delivering_deployment(pushed_early, deployments).id == "d2"  # type: ignore[union-attr]
    assert delivering_deployment(CommitFact("c4", "api", h(6), h(7), "c4"), deployments) is None


def test_lead_time_median_and_p90_over_commits_delivered_in_the_period() -> None:
    reports = [rep("d1", h(10), sha="x1"), rep("d2", h(50), sha="x2")]
    commits = [
        CommitFact("a", "api", timestamp=h(8), pushed_at=h(9)),  # -> d1: 2 h
        CommitFact("b", "api", timestamp=h(6), pushed_at=h(9)),  # -> d1: 4 h
        CommitFact("c", "api", timestamp=h(20), pushed_at=h(30)),  # -> d2: 30 h
        CommitFact("d", "api", timestamp=h(40), pushed_at=h(45)),  # -> d2: 10 h
        CommitFact("e", "api", timestamp=h(11), pushed_at=h(5)),  # -> d1, timestamp after: -1 h dropped
        CommitFact("f", "api", timestamp=h(60), pushed_at=h(61)),  # not delivered yet
        CommitFact("g", "web", timestamp=h(1), pushed_at=h(2)),  # another service
    ]
    lt = figures(Facts(reports=reports, commits=commits))["lead_time_for_changes"]
    # values 2, 4, 10, 30: median (4 + 10) / 2 = 7; p90 rank 2.7 -> 10 + 0.7 x 20 = 24
    assert lt == {"median_hours": 7.0, "p90_hours": 24.0, "changes": 4, "level": "elite"}


# --- change failure rate ---


def test_change_failure_rate_counts_failures_rollbacks_and_incidents_once_each() -> None:
    reports = [
        rep("ok1", h(1), sha="1"),
        rep("bad", h(10), "failure", sha="2"),
        rep("ok2", h(20), sha="3"),  # rolled back at 21 h (before the next success at 30 h) and incident at 22 h
        rep("ok3", h(30), sha="4"),
        rep("ok4", h(40), sha="5"),
    ]
    rollbacks = [Rollback("api", "production", h(21))]
    incidents = [Incident("i1", "api", "production", start=h(22), end=h(23))]
    cfr = figures(Facts(reports=reports, rollbacks=rollbacks, incidents=incidents))["change_failure_rate"]
    assert cfr == {"failed_deployments": 2, "deployments": 5, "rate": 0.4, "level": "low"}


def test_rollback_after_the_next_success_does_not_fail_the_earlier_deployment() -> None:
    tl = timeline(
        [rep("a", h(1), sha="1"), rep("b", h(5), sha="2")], [Rollback("api", "production", h(6))], incidents=[]
    )
    assert tl.rolled_back == {"a": False, "b": True}


def test_incident_links_to_named_deployment_else_latest_success_at_or_before_start() -> None:
    ds = merge_reports(
        [rep("v1", h(1), sha="s1", version="1.0"), rep("v2", h(5), sha="s2", version="2.0"), rep("f", h(6), "failure")]
    )
    assert link_incident(Incident("n", "api", "production", h(9), version="1.0"), ds) == "v1"
    assert link_incident(Incident("c", "api", "production", h(9), commit="s2"), ds) == "v2"
    assert link_incident(Incident("l", "api", "production", h(5.5)), ds) == "v2"
    assert link_incident(Incident("e", "api", "production", h(0)), ds) is None


# --- time to restore ---


def test_time_to_restore_is_the_median_over_incidents_resolved_in_the_period() -> None:
    incidents = [
        Incident("a", "api", "production", start=h(1), end=h(1.5)),  # 0.5 h
        Incident("b", "api", "production", start=h(2), end=h(3)),  # 1 h
        Incident("c", "api", "production", start=h(4), end=h(7)),  # 3 h
        Incident("d", "api", "production", start=h(-10), end=h(-1)),  # resolved before the period
        Incident("e", "api", "production", start=h(5), end=None),  # still open
    ]
    assert figures(Facts(incidents=incidents))["time_to_restore"] == {
        "median_hours": 1.0,
        "incidents": 3,
        "level": "high",
    }


# --- failed deployment recovery time ---


def test_recovery_time_runs_from_a_failed_deployment_to_the_next_success() -> None:
    reports = [
        rep("f1", h(1), "failure", sha="1"),
        rep("f2", h(2), "failure", sha="2"),
        rep("ok", h(4), sha="3"),  # f1 recovers in 3 h, f2 in 2 h
        rep("f3", h(10), "failure", sha="4"),  # never recovered: no sample
    ]
    assert figures(Facts(reports=reports))["failed_deployment_recovery_time"] == {"median_hours": 2.5, "samples": 2}


# --- rework rate ---


def test_rework_counts_emergency_deliveries_and_deployments_during_an_open_incident() -> None:
    reports = [
        rep("e", h(1), sha="1", change_id="chg-e"),
        rep("during", h(5), sha="2"),  # the incident of 4 h..6 h is open
        rep("after", h(7), sha="3"),
        rep("windowed", h(12), sha="4"),  # the single approved change whose window covers it is normal
    ]
    changes = {
        "chg-e": ChangeFact("chg-e", "api", "production", "emergency", approved=True),
        "chg-n": ChangeFact("chg-n", "api", "production", "normal", True, planned_start=h(11), planned_end=h(13)),
    }
    incidents = [Incident("i", "api", "production", start=h(4), end=h(6))]
    rr = figures(Facts(reports=reports, incidents=incidents, changes=changes))["rework_rate"]
    assert rr == {"rework_deployments": 2, "deployments": 4, "rate": 0.5}


# --- nulls and levels ---


def test_no_samples_give_zero_counts_and_null_values_and_levels() -> None:
    assert figures(Facts(), {"unknown"}) == {
        "deployment_frequency": {"deployments": 0, "deploy_days": 0, "per_day": None, "level": None},
        "lead_time_for_changes": {"median_hours": None, "p90_hours": None, "changes": 0, "level": None},
        "change_failure_rate": {"failed_deployments": 0, "deployments": 0, "rate": None, "level": None},
        "time_to_restore": {"median_hours": None, "incidents": 0, "level": None},
        "failed_deployment_recovery_time": {"median_hours": None, "samples": 0},
        "rework_rate": {"rework_deployments": 0, "deployments": 0, "rate": None},
        "performance_level": None,
    }


@pytest.mark.parametrize(
    ("fn", "value", "level"),
    [
        (frequency_level, 1.0, "elite"),
        (frequency_level, 1 / 7, "high"),
        (frequency_level, 1 / 30, "medium"),
        (frequency_level, 0.03, "low"),
        (lead_time_level, 23.99, "elite"),
        (lead_time_level, 24.0, "high"),
        (lead_time_level, 168.0, "medium"),
        (lead_time_level, 730.0, "low"),
        (failure_rate_level, 0.05, "elite"),
        (failure_rate_level, 0.10, "high"),
        (failure_rate_level, 0.15, "medium"),
        (failure_rate_level, 0.1501, "low"),
        (restore_level, 0.99, "elite"),
        (restore_level, 1.0, "high"),
        (restore_level, 24.0, "medium"),
        (restore_level, 168.0, "low"),
    ],
)
def test_level_boundaries(fn: object, value: float, level: str) -> None:
    assert fn(value) == level  # type: ignore[operator]


def test_performance_level_is_the_worst_non_null_level() -> None:
    assert performance_level("elite", None, "medium", "high") == "medium"
    assert performance_level(None, None, None, None) is None


# --- green zone and the release assessment ---


def test_green_needs_window_no_freeze_and_a_plain_allow() -> None:
    d = Deployment("d", "api", "production", datetime(2026, 3, 2, 10, 0, tzinfo=UTC), "success")  # Mon 10:00 UTC
    windows = [Window("production", frozenset({"mon"}), time(9), time(16), "Europe/London")]
    allow = GateDecisionFact("api", "production", "allow", frozenset(), d.at - timedelta(minutes=5))
    override = GateDecisionFact("api", "production", "allow", frozenset({"EMERGENCY_OVERRIDE"}), d.at)
    freeze = Freeze(d.at - timedelta(hours=1), d.at + timedelta(hours=1), frozenset({"production"}), frozenset())
    assert green(d, windows, [], [allow])
    assert not green(d, windows, [], [allow, override])  # the latest decision was an override
    assert not green(d, windows, [freeze], [allow])
    assert not green(d, [], [], [])  # no allow decision
    evening = Deployment("e", "api", "production", datetime(2026, 3, 2, 17, 0, tzinfo=UTC), "success")
    assert not green(evening, windows, [], [allow])


def test_assessment_score_weights_its_parts() -> None:
    milestone = h(0)
    result = assessment(
        change_outcomes={"a": "successful", "b": "failed", "c": "cancelled", "d": "successful"},  # C = 2/3
        deployments=[
            ReleaseDeploymentFact(succeeded=True, rolled_back=False, green=True, at=h(84)),  # 3.5 days late
            ReleaseDeploymentFact(succeeded=True, rolled_back=True, green=False, at=h(90)),
        ],  # D = 1/2, G = 1/2, S = 1 - 3.5/14 = 0.75
        services_passing=1,
        services=2,  # Q = 1/2
        deploy_milestone=milestone,
        els_start=h(84),
        els_end=h(84 + 168),
        incidents=[ReleaseIncidentFact(start=h(100), end=h(101))],  # resolved within ELS: E = 0.5
    )
    # 100 x (0.3 x 2/3 + 0.2 x 0.5 + 0.15 x 0.5 + 0.15 x 0.5 + 0.1 x 0.75 + 0.1 x 0.5) = 57.5 -> 58 (half to even: 58)
    assert result == {
        "score": 58,
        "components": {"C": 0.6667, "D": 0.5, "G": 0.5, "Q": 0.5, "S": 0.75, "E": 0.5},
    }


def test_assessment_of_an_empty_release() -> None:
    result = assessment(
        change_outcomes={},
        deployments=[],
        services_passing=0,
        services=1,
        deploy_milestone=None,
        els_start=None,
        els_end=None,
        incidents=[],
    )
    # C = 1, D = 0, G = 1, Q = 0, S = 1, E = 1 -> 30 + 0 + 15 + 0 + 10 + 10
    assert result["score"] == 65


def _naive_link(incident: Incident, deployments: list[Any]) -> str | None:
    """METRICS.md's incident link read literally (the first implementation): the reference for the indexed one."""

    def pick(candidates: list[Any]) -> Any:
        if not candidates:
            return None
        if incident.start is not None:
            before = [d for d in candidates if d.at <= incident.start]
            return before[-1] if before else candidates[0]
        return candidates[-1]

    named = pick([d for d in deployments if d.commit == incident.commit]) if incident.commit else None
    if named is None and incident.version:
        named = pick([d for d in deployments if d.version == incident.version])
    if named is not None:
        return str(named.id)
    if incident.start is None:
        return None
    latest = [d for d in deployments if d.succeeded and d.at <= incident.start]
    return str(latest[-1].id) if latest else None


@pytest.mark.parametrize("seed", range(5))
def test_incident_links_equal_the_literal_reading_on_generated_histories(seed: int) -> None:
    rng = random.Random(seed)
    reports = [
        Report(
            f"r{n}",
            "api",
            "production",
            h(rng.choice([n, n, n + 0.1])),  # some at the same time
            rng.choice(["success", "success", "failure"]),
            rng.choice([None, f"s{n % 7}"]),
            rng.choice([None, f"1.{n % 5}"]),
            "github",
        )
        for n in range(80)
    ]
    deployments = merge_reports(reports)
    for n in range(60):
        start = rng.choice([None, h(rng.uniform(-5, 90))])
        incident = Incident(
            f"i{n}", "api", "production", start, None, rng.choice([None, f"1.{n % 6}"]), rng.choice([None, f"s{n % 9}"])
        )
        assert link_incident(incident, deployments) == _naive_link(incident, deployments), incident
