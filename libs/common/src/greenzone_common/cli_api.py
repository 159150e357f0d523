"""``greenzone`` commands that talk to the services' HTTP APIs (API.md), for people and for pipelines.

Configuration comes from flags or ``GREENZONE_*`` variables (``GREENZONE_TOKEN``, ``GREENZONE_CHANGE_URL``…).
Every command takes ``--json``. Exit codes: 0 success (for ``gate check``: allowed), 1 denied by the gate, 2 error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from greenzone_common.client import Api, ApiError, ClientSettings

console = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="Bearer token (else GREENZONE_TOKEN)")]

changes_app = typer.Typer(help="Change requests", no_args_is_help=True)
releases_app = typer.Typer(help="Releases", no_args_is_help=True)
freeze_app = typer.Typer(help="Freezes", no_args_is_help=True)
report_app = typer.Typer(help="Reports", no_args_is_help=True)
gate_app = typer.Typer(help="The deployment gate", no_args_is_help=True)
evidence_app = typer.Typer(help="Test and security evidence", no_args_is_help=True)


def api(token: str | None) -> Api:
    return Api(ClientSettings(), token)


@contextmanager
def errors_exit() -> Iterator[None]:
    try:
        yield
    except ApiError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        render(data)


def table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(t)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


CHANGE_COLUMNS = ("id", "number", "state", "type", "service", "environment", "title", "requested_by")


def show_change(change: dict[str, Any]) -> None:
    table(f"{change.get('number')} — {change.get('title')}", [change], CHANGE_COLUMNS)
    risk = change.get("risk") or {}
    console.print(
        f"risk {risk.get('score')} ({risk.get('level')}); approvals "
        f"{len(change.get('approvals') or [])}/{change.get('required_approvals')}"
        + ("; auto-approved" if change.get("auto_approved") else "")
    )
    for factor in risk.get("factors", []):
        console.print(f"  +{factor['points']:>3} {factor['code']}: {factor.get('detail', '')}")


# --- changes -----------------------------------------------------------------------------------------------------


@changes_app.command("create")
def changes_create(
    title: Annotated[str, typer.Option()],
    service: Annotated[str, typer.Option()],
    environment: Annotated[str, typer.Option()],
    type: Annotated[str, typer.Option(help="standard | normal | emergency")] = "normal",
    description: Annotated[str, typer.Option()] = "",
    version: Annotated[str | None, typer.Option()] = None,
    commit: Annotated[list[str] | None, typer.Option(help="A commit SHA, repeatable")] = None,
    planned_start: Annotated[str | None, typer.Option()] = None,
    planned_end: Annotated[str | None, typer.Option()] = None,
    template_id: Annotated[str | None, typer.Option()] = None,
    release_id: Annotated[str | None, typer.Option()] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Raise a change request (draft)."""
    body = {
        "title": title,
        "description": description,
        "type": type,
        "service": service,
        "environment": environment,
        "version": version,
        "commits": commit or [],
        "planned_start": planned_start,
        "planned_end": planned_end,
        "template_id": template_id,
        "release_id": release_id,
    }
    with errors_exit():
        change = api(token).json("change", "POST", "/changes", json={k: v for k, v in body.items() if v is not None})
    emit(change, as_json, show_change)


def _change_action(change_id: str, action: str, body: dict[str, Any] | None, token: str | None, as_json: bool) -> None:
    with errors_exit():
        change = api(token).json("change", "POST", f"/changes/{change_id}/{action}", json=body or {})
    emit(change, as_json, show_change)


@changes_app.command("submit")
def changes_submit(change_id: str, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Submit a draft for approval (standard and auto-approvable changes are approved at once)."""
    _change_action(change_id, "submit", None, token, as_json)


@changes_app.command("approve")
def changes_approve(
    change_id: str, comment: Annotated[str, typer.Option()] = "", token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Approve a change awaiting approval."""
    _vote(change_id, "approve", comment, token, as_json)


@changes_app.command("reject")
def changes_reject(
    change_id: str, comment: Annotated[str, typer.Option()] = "", token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Reject a change awaiting approval."""
    _vote(change_id, "reject", comment, token, as_json)


def _vote(change_id: str, decision: str, comment: str, token: str | None, as_json: bool) -> None:
    client = api(token)
    with errors_exit():
        client.request(
            "change", "POST", f"/changes/{change_id}/approvals", json={"decision": decision, "comment": comment}
        )
        change = client.json("change", "GET", f"/changes/{change_id}")
    emit(change, as_json, show_change)


@changes_app.command("list")
def changes_list(
    state: Annotated[str | None, typer.Option()] = None,
    service: Annotated[str | None, typer.Option()] = None,
    type: Annotated[str | None, typer.Option()] = None,
    environment: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(help="At most this many")] = 200,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List changes (all pages, up to --limit)."""
    params = {"state": state, "service": service, "type": type, "environment": environment}
    with errors_exit():
        items = api(token).pages("change", "/changes", params, limit)
    emit(items, as_json, lambda rows: table(f"{len(rows)} change(s)", rows, CHANGE_COLUMNS))


@changes_app.command("show")
def changes_show(change_id: str, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """One change with its risk factors and approvals."""
    with errors_exit():
        change = api(token).json("change", "GET", f"/changes/{change_id}")
    emit(change, as_json, show_change)


# --- releases ----------------------------------------------------------------------------------------------------

RELEASE_COLUMNS = ("id", "name", "version", "state", "services", "changes")


@releases_app.command("plan")
def releases_plan(
    name: Annotated[str, typer.Option()],
    version: Annotated[str, typer.Option()],
    service: Annotated[list[str], typer.Option(help="A service, repeatable")],
    change: Annotated[list[str] | None, typer.Option(help="A change id, repeatable")] = None,
    notify: Annotated[list[str] | None, typer.Option(help="A webhook URL, repeatable")] = None,
    depends_on: Annotated[list[str] | None, typer.Option(help="A release id, repeatable")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Plan a release of one or more services."""
    body = {
        "name": name,
        "version": version,
        "services": service,
        "changes": change or [],
        "notify": notify or [],
        "depends_on": depends_on or [],
    }
    with errors_exit():
        release = api(token).json("release", "POST", "/releases", json=body)
    emit(release, as_json, lambda r: table("release planned", [r], RELEASE_COLUMNS))


@releases_app.command("deploy")
def releases_deploy(
    release_id: str,
    environment: Annotated[str, typer.Option()],
    commit: Annotated[str | None, typer.Option()] = None,
    outcome: Annotated[str, typer.Option(help="success | failure")] = "success",
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a deployment of the release (the gate is applied first)."""
    body = {"environment": environment, "commit": commit, "outcome": outcome}
    with errors_exit():
        result = api(token).json("release", "POST", f"/releases/{release_id}/deployments", json=body)
    emit(result, as_json, lambda r: console.print(f"deployed to {environment}: {_cell(r)}"))


@releases_app.command("rollback")
def releases_rollback(
    release_id: str,
    environment: Annotated[str, typer.Option()],
    reason: Annotated[str, typer.Option()],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a rollback of the release in an environment."""
    with errors_exit():
        result = api(token).json(
            "release", "POST", f"/releases/{release_id}/rollback", json={"environment": environment, "reason": reason}
        )
    emit(result, as_json, lambda r: console.print(f"rolled back in {environment}: {_cell(r)}"))


@releases_app.command("close")
def releases_close(release_id: str, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """End early life support now and close the release (the release report follows)."""
    with errors_exit():
        release = api(token).json("release", "POST", f"/releases/{release_id}/close")
    emit(release, as_json, lambda r: table("release closed", [r], RELEASE_COLUMNS))


@releases_app.command("calendar")
def releases_calendar(
    start: Annotated[str | None, typer.Option("--from")] = None,
    end: Annotated[str | None, typer.Option("--to")] = None,
    ics: Annotated[bool, typer.Option("--ics", help="Print iCalendar (RFC 5545)")] = False,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The release calendar: releases, milestones, windows, freezes, planned changes."""
    params = {k: v for k, v in {"from": start, "to": end}.items() if v}
    with errors_exit():
        if ics:
            typer.echo(api(token).request("release", "GET", "/calendar.ics", params=params).text)
            return
        calendar = api(token).json("release", "GET", "/calendar", params=params)
    entries: list[dict[str, Any]] = list(calendar) if isinstance(calendar, list) else []
    if isinstance(calendar, dict):
        entries = list(calendar.get("items") or calendar.get("entries") or [])
    emit(calendar, as_json, lambda _: table("calendar", entries, ("kind", "title", "start", "end")))


# --- freezes -----------------------------------------------------------------------------------------------------


@freeze_app.command("add")
def freeze_add(
    name: Annotated[str, typer.Option()],
    start: Annotated[str, typer.Option()],
    end: Annotated[str, typer.Option()],
    reason: Annotated[str, typer.Option()],
    environment: Annotated[list[str], typer.Option(help="An environment, repeatable")],
    service: Annotated[list[str] | None, typer.Option(help="A service, repeatable (none = all)")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Schedule a freeze."""
    body = {
        "name": name,
        "start": start,
        "end": end,
        "environments": environment,
        "services": service or [],
        "reason": reason,
    }
    with errors_exit():
        freeze = api(token).json("release", "POST", "/freezes", json=body)
    emit(freeze, as_json, lambda f: table("freeze scheduled", [f], ("id", "name", "start", "end", "environments")))


@freeze_app.command("list")
def freeze_list(token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """The freezes."""
    with errors_exit():
        items = api(token).pages("release", "/freezes", {})
    emit(
        items,
        as_json,
        lambda rows: table(
            f"{len(rows)} freeze(s)", rows, ("id", "name", "start", "end", "environments", "services", "reason")
        ),
    )


@freeze_app.command("lift")
def freeze_lift(freeze_id: str, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Lift a freeze."""
    with errors_exit():
        api(token).request("release", "DELETE", f"/freezes/{freeze_id}", ok=(200, 202, 204))
    emit({"id": freeze_id, "lifted": True}, as_json, lambda _: console.print(f"freeze {freeze_id} lifted"))


# --- reports -----------------------------------------------------------------------------------------------------


@report_app.command("dora")
def report_dora(
    service: Annotated[str | None, typer.Option()] = None,
    team: Annotated[str | None, typer.Option()] = None,
    environment: Annotated[str, typer.Option()] = "production",
    start: Annotated[str | None, typer.Option("--from")] = None,
    end: Annotated[str | None, typer.Option("--to")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """DORA metrics for a service, a team or everything."""
    params = {"service": service, "team": team, "environment": environment, "from": start, "to": end}
    with errors_exit():
        dora = api(token).json("report", "GET", "/dora", params={k: v for k, v in params.items() if v})
    emit(dora, as_json, _show_dora)


def _show_dora(dora: dict[str, Any]) -> None:
    t = Table(
        title=f"DORA — {dora.get('service') or 'all'} in {dora.get('environment')}, "
        f"{dora.get('from')} → {dora.get('to')}"
    )
    t.add_column("metric")
    t.add_column("value")
    t.add_column("level")
    for name, metric in dora.items():
        if isinstance(metric, dict):
            level = metric.get("level", "")
            values = ", ".join(f"{k}={_cell(v)}" for k, v in metric.items() if k != "level")
            t.add_row(name, values, level or "")
    t.add_row("performance_level", "", _cell(dora.get("performance_level")))
    console.print(t)


@report_app.command("release")
def report_release(
    release_id: str,
    format: Annotated[str, typer.Option(help="json | html | csv")] = "json",
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The report of a closed release, with its assessment score."""
    with errors_exit():
        if format != "json":
            typer.echo(
                api(token).request("report", "GET", f"/releases/{release_id}/report", params={"format": format}).text
            )
            return
        report = api(token).json("report", "GET", f"/releases/{release_id}/report")
    assessment = report.get("assessment", {})
    emit(
        report,
        as_json,
        lambda r: console.print(
            f"release {release_id}: score {assessment.get('score')} {assessment.get('components')}; "
            f"changes {json.dumps(r.get('changes'))}"
        ),
    )


# --- gate --------------------------------------------------------------------------------------------------------


@gate_app.command("check")
def gate_check(
    service: Annotated[str, typer.Option()],
    env: Annotated[str, typer.Option("--env", "--environment")],
    version: Annotated[str, typer.Option()],
    commit: Annotated[str | None, typer.Option()] = None,
    change_id: Annotated[str | None, typer.Option()] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """May SERVICE at VERSION go to ENV now? Exit 0 allowed, 1 denied (reasons printed), 2 error."""
    body = {"service": service, "environment": env, "version": version, "commit": commit, "change_id": change_id}
    with errors_exit():
        decision = api(token).json("release", "POST", "/gates/evaluate", json=body)
    allowed = decision.get("decision") == "allow"

    def render(d: dict[str, Any]) -> None:
        colour = "green" if allowed else "red"
        console.print(
            f"[{colour}]{d.get('decision', '?').upper()}[/{colour}] {service} {version} → {env}"
            f" (decision {d.get('decision_id')})"
        )
        for reason in d.get("reasons", []):
            console.print(f"  {reason.get('code')}: {reason.get('message')}")
        if d.get("change_id"):
            console.print(f"  change: {d['change_id']}")

    emit(decision, as_json, render)
    raise typer.Exit(0 if allowed else 1)


# --- evidence ----------------------------------------------------------------------------------------------------


def _evidence(
    kind: str, file: Path, service: str, version: str, commit: str | None, token: str | None, as_json: bool
) -> None:
    content_type = "application/xml" if kind == "junit" else "application/sarif+json"
    params = {k: v for k, v in {"service": service, "version": version, "commit": commit}.items() if v}
    with errors_exit():
        result = api(token).json(
            "pipeline",
            "POST",
            f"/evidence/{kind}",
            params=params,
            content=file.read_bytes(),
            headers={"Content-Type": content_type},
        )
    emit(result, as_json, lambda r: console.print(f"{kind} evidence recorded for {service} {version}: {_cell(r)}"))


FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


@evidence_app.command("junit")
def evidence_junit(
    file: FileArg,
    service: Annotated[str, typer.Option()],
    version: Annotated[str, typer.Option()],
    commit: Annotated[str | None, typer.Option()] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a JUnit XML report (pytest, Surefire, Jest…) as test evidence."""
    _evidence("junit", file, service, version, commit, token, as_json)


@evidence_app.command("sarif")
def evidence_sarif(
    file: FileArg,
    service: Annotated[str, typer.Option()],
    version: Annotated[str, typer.Option()],
    commit: Annotated[str | None, typer.Option()] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a SARIF 2.1.0 report (CodeQL, Semgrep, Trivy…) as security evidence."""
    _evidence("sarif", file, service, version, commit, token, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(changes_app, name="changes")
    app.add_typer(releases_app, name="releases")
    app.add_typer(freeze_app, name="freeze")
    app.add_typer(report_app, name="report")
    app.add_typer(gate_app, name="gate")
    app.add_typer(evidence_app, name="evidence")
