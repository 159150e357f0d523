"""GET /dashboard: one page a manager would rather look at than read, rendered on the server.

DORA trends per week with their levels, deployments and failures, the lead-time distribution, the release
calendar ahead, changes awaiting CAB, unrecorded deployments and platform health. The charts are inline SVG
(``charts.py``): the page needs nothing from the internet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from report_svc.dashboard import charts
from report_svc.delivery.service import production_view
from report_svc.metrics import formulas as f
from report_svc.metrics.period import Period
from report_svc.platform.service import platform_health
from report_svc.projections.facts import ReleaseView
from report_svc.projections.models import ChangeView

WEEKS = 12
LEAD_EDGES = [0, 1, 4, 24, 72, 168, 730]
LEVEL_COLOURS = {"elite": "#2f855a", "high": "#38a169", "medium": "#d69e2e", "low": "#c53030", None: "#a0aec0"}
MILESTONES = ("build", "deploy", "els_end", "closure")


def _week_starts(now: datetime) -> list[datetime]:
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return [monday - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]


def _badge(level: str | None) -> str:
    return (
        f'<span class="badge" style="background:{LEVEL_COLOURS.get(level, "#a0aec0")}">{escape(level or "n/a")}</span>'
    )


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def _table(rows: list[list[str]], head: list[str], empty: str) -> str:
    if not rows:
        return f"<p class='none'>{escape(empty)}</p>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


async def render(session: AsyncSession, heartbeat_interval: float, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    view = await production_view(session)
    facts, tl = view.facts, view.timeline

    # DORA per week (all services, production)
    weeks = _week_starts(now)
    labels = [w.strftime("%d %b") for w in weeks]
    weekly = [
        f.dora(facts, services=None, environment="production", start=w, end=w + timedelta(weeks=1), tl=tl)
        for w in weeks
    ]
    current = f.dora(facts, services=None, environment="production", start=now - timedelta(days=30), end=now, tl=tl)

    deployments_chart = charts.stacked_bars(
        "deployments",
        "Production deployments per week: successful (green) and failed (red)",
        labels,
        [w["change_failure_rate"]["deployments"] - w["change_failure_rate"]["failed_deployments"] for w in weekly],
        [w["change_failure_rate"]["failed_deployments"] for w in weekly],
    )
    lead_chart = charts.line(
        "lead-time-trend",
        "Median lead time for changes per week (hours)",
        labels,
        [w["lead_time_for_changes"]["median_hours"] for w in weekly],
        " h",
    )
    cfr_chart = charts.line(
        "failure-rate-trend",
        "Change failure rate per week",
        labels,
        [w["change_failure_rate"]["rate"] for w in weekly],
    )
    leads = f.lead_times(
        facts.commits, tl.deployments, services=None, environment="production", start=now - timedelta(days=90), end=now
    )
    counts = [
        sum(1 for v in leads if LEAD_EDGES[i] <= v and (i + 1 == len(LEAD_EDGES) or v < LEAD_EDGES[i + 1]))
        for i in range(len(LEAD_EDGES))
    ]
    distribution = charts.histogram("lead-time-distribution", "Lead time for changes, last 90 days", LEAD_EDGES, counts)
    level_row = "".join(f"<td>{_badge(w['performance_level'])}</td>" for w in weekly)
    trend_table = (
        "<table class='levels'><thead><tr><th></th>"
        + "".join(f"<th>{escape(lb)}</th>" for lb in labels)
        + f"</tr></thead><tbody><tr><th>level</th>{level_row}</tr></tbody></table>"
    )

    # the release calendar ahead
    releases = (
        (await session.execute(select(ReleaseView).where(ReleaseView.state.not_in(["closed", "cancelled"]))))
        .scalars()
        .all()
    )
    upcoming: list[tuple[datetime, str, str, str]] = []
    for r in releases:
        for name in MILESTONES:
            raw = (r.milestones or {}).get(name)
            if raw:
                when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
                if when >= now - timedelta(days=1):
                    upcoming.append((when, r.name, r.version, name))
    upcoming.sort()
    calendar = _table(
        [[escape(w.strftime("%a %d %b %Y %H:%M")), escape(n), escape(v), escape(m)] for w, n, v, m in upcoming[:20]],
        ["when (UTC)", "release", "version", "milestone"],
        "No release milestones ahead.",
    )

    # changes awaiting CAB
    waiting = (
        (
            await session.execute(
                select(ChangeView).where(ChangeView.state == "awaiting_approval").order_by(ChangeView.created_at)
            )
        )
        .scalars()
        .all()
    )
    cab = _table(
        [
            [
                escape(c.number),
                escape(c.title),
                escape(c.service),
                escape(c.type),
                escape(c.risk_level or ""),
                escape(f"{(now - c.created_at).days} d"),
            ]
            for c in waiting[:25]
        ],
        ["change", "title", "service", "type", "risk", "waiting"],
        "No change is waiting for approval.",
    )

    # unrecorded deployments, last 30 days
    month = Period(now - timedelta(days=30), now)
    recent = view.deployments(month)
    unrecorded = [d for d in recent if not view.traced(d)]
    coverage = (len(recent) - len(unrecorded)) / len(recent) if recent else None
    unrecorded_table = _table(
        [
            [
                escape(d.service),
                escape(d.environment),
                escape(d.at.strftime("%d %b %H:%M")),
                escape(d.outcome),
                escape(d.version or d.commit or ""),
            ]
            for d in sorted(unrecorded, key=lambda d: d.at, reverse=True)[:25]
        ],
        ["service", "environment", "when", "outcome", "version"],
        "Every production deployment of the last 30 days is linked to an approved change.",
    )

    # platform health
    health = await platform_health(session, heartbeat_interval, now)
    health_table = _table(
        [
            [
                escape(s["service"]),
                escape(s["instance"]),
                escape(s["status"]),
                _fmt(s["age_seconds"], 0),
                _fmt(s["outbox_backlog"]),
                _fmt(sum(s["consumer_lag"].values())),
                _fmt(s["dead_letters"]),
            ]
            for s in health["services"]
        ],
        ["service", "instance", "status", "age (s)", "outbox backlog", "consumer lag", "dead letters"],
        "No heartbeat received yet.",
    )

    c = current
    tiles = "".join(
        f"<div class='tile'><div class='k'>{escape(k)}</div><div class='v'>{v}</div>{_badge(lv)}</div>"
        for k, v, lv in (
            ("Deployments / day", _fmt(c["deployment_frequency"]["per_day"]), c["deployment_frequency"]["level"]),
            (
                "Lead time (median h)",
                _fmt(c["lead_time_for_changes"]["median_hours"]),
                c["lead_time_for_changes"]["level"],
            ),
            ("Change failure rate", _fmt(c["change_failure_rate"]["rate"], 3), c["change_failure_rate"]["level"]),
            ("Time to restore (median h)", _fmt(c["time_to_restore"]["median_hours"]), c["time_to_restore"]["level"]),
            ("Overall", "", c["performance_level"]),
        )
    )
    return PAGE.format(
        generated=escape(now.strftime("%Y-%m-%d %H:%M UTC")),
        tiles=tiles,
        trend_table=trend_table,
        deployments_chart=deployments_chart,
        lead_chart=lead_chart,
        cfr_chart=cfr_chart,
        distribution=distribution,
        calendar=calendar,
        cab=cab,
        coverage=escape("—" if coverage is None else f"{coverage:.0%}"),
        unrecorded=unrecorded_table,
        health_status=escape(health["status"]),
        health=health_table,
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Greenzone — delivery dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f7fafc;color:#1a202c}}
header{{background:#22543d;color:#fff;padding:1rem 2rem}} header h1{{margin:0;font-size:1.4rem}}
main{{padding:1rem 2rem;display:grid;grid-template-columns:repeat(auto-fit,minmax(660px,1fr));gap:1rem}}
section{{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:1rem}}
section.wide{{grid-column:1/-1}} h2{{font-size:1.05rem;margin:.2rem 0 .8rem}}
.tiles{{display:flex;gap:1rem;flex-wrap:wrap}} .tile{{border:1px solid #e2e8f0;border-radius:6px;padding:.6rem 1rem}}
.tile .k{{font-size:.8rem;color:#4a5568}} .tile .v{{font-size:1.6rem;font-weight:700}}
.badge{{display:inline-block;color:#fff;border-radius:4px;padding:0 .4rem;font-size:.75rem}}
table{{border-collapse:collapse;font-size:.85rem}}
td,th{{border-bottom:1px solid #edf2f7;padding:.25rem .5rem;text-align:left}}
.none{{color:#718096}}
</style></head>
<body>
<header><h1>Greenzone — delivery dashboard</h1><div>Production, all services. Generated {generated}.</div></header>
<main>
<section class="wide"><h2>Last 30 days</h2><div class="tiles">{tiles}</div></section>
<section class="wide"><h2>DORA level per week</h2>{trend_table}</section>
<section><h2>Deployments and failures per week</h2>{deployments_chart}</section>
<section><h2>Lead-time distribution</h2>{distribution}</section>
<section><h2>Median lead time per week</h2>{lead_chart}</section>
<section><h2>Change failure rate per week</h2>{cfr_chart}</section>
<section><h2>Release calendar ahead</h2>{calendar}</section>
<section><h2>Changes awaiting CAB</h2>{cab}</section>
<section><h2>Unrecorded deployments (traceability {coverage})</h2>{unrecorded}</section>
<section><h2>Platform health: {health_status}</h2>{health}</section>
</main>
<script>
// Self-check for people and tests alike: how many charts drew marks with a visible size.
window.addEventListener("load", () => {{
  const charts = [...document.querySelectorAll("svg.chart")];
  const drawn = charts.filter(svg => [...svg.querySelectorAll(".mark")].some(m => {{
    const box = m.getBBox(); return box.width > 0 && box.height > 0; }}));
  document.body.dataset.charts = String(charts.length);
  document.body.dataset.chartsDrawn = String(drawn.length);
  document.body.dataset.marks = String(document.querySelectorAll("svg.chart .mark").length);
}});
</script>
</body></html>
"""
