"""The ``greenzone`` command: dev tokens, replay, dead letters, contracts, and the development stack."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from greenzone_common import cli_api, topology
from greenzone_common.auth import ROLES, issue_dev_token
from greenzone_common.settings import CommonSettings

app = typer.Typer(help="Greenzone — delivery control plane", no_args_is_help=True, pretty_exceptions_enable=False)
dlq_app = typer.Typer(help="Dead-letter topics", no_args_is_help=True)
dev_app = typer.Typer(help="The development stack", no_args_is_help=True)
contracts_app = typer.Typer(help="Event contracts", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(dev_app, name="dev")
app.add_typer(contracts_app, name="contracts")
console = Console()
cli_api.register(app)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _settings() -> CommonSettings:
    return CommonSettings(service_name="greenzone-cli")


def _parse_time(value: str) -> datetime:
    """ISO 8601, or a duration back from now such as ``2h``, ``30m``, ``7d``."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if value and value[-1] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise typer.BadParameter("give a time zone (e.g. 2026-03-02T09:00:00Z)")
    return parsed


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="The subject (user or tool)")],
    role: Annotated[list[str], typer.Option(help=f"A role, repeatable: {', '.join(ROLES)}")],
    team: Annotated[list[str] | None, typer.Option(help="A team, repeatable")] = None,
    ttl_hours: Annotated[float, typer.Option(help="Validity in hours")] = 12.0,
) -> None:
    """Print a development token signed with GREENZONE_JWT_SECRET."""
    unknown = [r for r in role if r not in ROLES]
    if unknown:
        raise typer.BadParameter(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    secret = _settings().jwt_secret.get_secret_value()
    typer.echo(issue_dev_token(secret, sub, role, teams=team, ttl=timedelta(hours=ttl_hours)))


@app.command()
def replay(
    service: Annotated[str, typer.Option(help="The service whose outbox to replay, e.g. change-svc")],
    since: Annotated[str, typer.Option(help="ISO 8601 time, or a duration back from now (2h, 7d)")],
    wait: Annotated[bool, typer.Option(help="Show progress until the service's relay has re-published them")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-publish the retained events a service wrote since a time (consumers dedupe: always safe)."""
    from greenzone_common.relay import replay as do_replay

    info = topology.service(service)
    start = _parse_time(since)
    dsn = _settings().asyncpg_dsn
    count = asyncio.run(do_replay(dsn, info.schema, start))
    if wait and count:
        asyncio.run(_follow_replay(dsn, info.schema, start, count, quiet=as_json))
    if as_json:
        typer.echo(json.dumps({"service": service, "since": start.isoformat(), "events": count}))
    else:
        console.print(f"{count} event(s) of {service} since {start.isoformat()} queued for re-publication")


async def _follow_replay(dsn: str, schema: str, since: datetime, total: int, quiet: bool) -> None:
    import asyncpg
    from rich.progress import Progress

    conn = await asyncpg.connect(dsn)
    try:
        with Progress(console=console, disable=quiet) as progress:
            task = progress.add_task(f"re-publishing {schema}", total=total)
            while True:
                left = await conn.fetchval(
                    f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL AND created_at >= $1', since
                )
                progress.update(task, completed=total - int(left))
                if not left:
                    return
                await asyncio.sleep(0.2)
    finally:
        await conn.close()


@dlq_app.command("list")
def dlq_list(
    topic: Annotated[str, typer.Option(help="A topic (or its .dlq)")] = "greenzone.change",
    as_json: JsonOpt = False,
) -> None:
    """List the messages in a dead-letter topic with their errors."""
    from greenzone_common.dlq import list_dead_letters

    letters = asyncio.run(list_dead_letters(_settings(), topic))
    if as_json:
        typer.echo(json.dumps([d.as_dict() for d in letters], indent=2))
        return
    table = Table(title=f"{topic.removesuffix('.dlq')}.dlq — {len(letters)} message(s)")
    for col in ("partition", "offset", "ce_type", "ce_id", "group", "error", "failed_at", "redriven"):
        table.add_column(col)
    for d in letters:
        table.add_row(
            str(d.partition),
            str(d.offset),
            d.ce_type or "-",
            d.ce_id or "-",
            d.group,
            d.error[:80],
            d.failed_at,
            "yes" if d.redriven else "no",
        )
    console.print(table)


@dlq_app.command("redrive")
def dlq_redrive(
    topic: Annotated[str, typer.Option(help="A topic (or its .dlq)")],
    as_json: JsonOpt = False,
) -> None:
    """Re-publish the dead letters not yet re-driven to the topic they came from."""
    from greenzone_common.dlq import redrive

    count = asyncio.run(redrive(_settings(), topic))
    if as_json:
        typer.echo(json.dumps({"topic": topic, "redriven": count}))
    else:
        console.print(f"{count} message(s) re-driven from {topic.removesuffix('.dlq')}.dlq")


@contracts_app.command("export")
def contracts_export(out: Annotated[Path, typer.Option(help="Output folder")] = Path("docs")) -> None:
    """Write the AsyncAPI 3.0 document and one JSON Schema per event type."""
    from greenzone_common.contracts import registry
    from greenzone_common.contracts.export import write_contracts

    paths = write_contracts(out)
    console.print(f"{len(registry)} event types; wrote {len(paths)} file(s) under {out}")


@dev_app.command("run")
def dev_run(
    state_dir: Annotated[Path, typer.Option(help="Where embedded PostgreSQL keeps its data")] = Path(".greenzone"),
    port_offset: Annotated[int, typer.Option(help="Added to the service ports 8001-8004")] = 0,
) -> None:
    """Start PostgreSQL and the broker (unless configured), migrate, start the four services; Ctrl-C stops all."""
    from greenzone_common.devrun import run

    raise typer.Exit(run(state_dir, port_offset))


@dev_app.command("migrate")
def dev_migrate(
    state_dir: Annotated[Path, typer.Option(help="Where embedded PostgreSQL keeps its data")] = Path(".greenzone"),
) -> None:
    """Run every service's migrations (starting embedded PostgreSQL if GREENZONE_DATABASE_URL is unset)."""
    from greenzone_common.devrun import migrate_only

    raise typer.Exit(migrate_only(state_dir))


def main() -> None:
    app()
