"""Messaging throughput: the outbox relay and the consumer runner with its inbox, each beside a raw baseline.

    .venv/bin/python bench/bench_messaging.py [--events N]      # N defaults to 50,000; ``make bench`` runs this

One run starts an embedded PostgreSQL (fsync on: realistic durability) and the Tansu broker, unless
``GREENZONE_DATABASE_URL`` / ``GREENZONE_KAFKA_BOOTSTRAP`` point at existing ones, creates a fresh database with the
change and report schemas, then measures:

1. relay: N ``ChangeCreated`` outbox rows (bulk-copied, not timed) published by ``Relay.publish`` (the relay
   loop's own call, batches overlapping) until the backlog is empty; baseline: the same N key/value/headers
   produced with raw ``AIOKafkaProducer.send`` futures gathered, same producer settings;
2. consumer with inbox: a ``ConsumerRunner`` for report-svc's real change subscription (fresh group) until the
   projection holds N rows; baseline: raw asyncpg ``executemany`` of the same inbox + change_events rows into scratch
   tables, one transaction per ``consumer_batch_size`` rows (the consumer's commit granularity).

On an external broker the events travel on a topic of their own (``greenzone.change.bench.<id>``, deleted after).
The process is set up as a service's lifespan sets itself up (SDK tracer provider, SQLAlchemy instrumentation on the
engine, structlog); ``--no-telemetry`` leaves tracing out to show what it costs. ``--profile DIR`` writes a
cProfile of the relay and consumer phases (slower: read the shape, not the rates). ``--timeout`` bounds the consumer
phase (the rate so far is reported). See bench/README.md for the figures measured and what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import random
import signal
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiokafka
import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry import trace
from rich.console import Console
from rich.table import Table

from greenzone_common import envelope, kafka, telemetry
from greenzone_common.consumer import ConsumerRunner, Subscription
from greenzone_common.contracts import CHANGE_TOPIC
from greenzone_common.contracts.change import ChangeCreated
from greenzone_common.db import make_engine, make_sessionmaker
from greenzone_common.devstack import EmbeddedPostgres, Tansu
from greenzone_common.migrations import migrate
from greenzone_common.outbox import Outbox
from greenzone_common.plumbing import plumbing_tables
from greenzone_common.relay import Relay, backlog
from greenzone_common.settings import CommonSettings

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, imported by a dependency

RELAY_TARGET = 10_000  # msg/s
CONSUMER_TARGET = 5_000  # events/s
OUTBOX_COLUMNS = ("id", "topic", "key", "type", "source", "subject", "time", "data", "headers")
SCRATCH = "bench_scratch"

console = Console(width=None if sys.stdout.isatty() else 150)


# --------------------------------------------------------------------------------------------------- infrastructure


@dataclass
class Stack:
    admin_url: str
    bootstrap: str
    database_url: str = ""
    database: str = ""
    external_db: bool = False
    external_broker: bool = False
    postgres: EmbeddedPostgres | None = None
    tansu: Tansu | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None


@contextlib.contextmanager
def started_stack() -> Iterator[Stack]:
    """PostgreSQL and the broker: the environment's, or embedded ones stopped on the way out (whatever happens)."""
    tmp = tempfile.TemporaryDirectory(prefix="greenzone-bench-")
    postgres: EmbeddedPostgres | None = None
    tansu: Tansu | None = None
    try:
        admin_url = os.environ.get("GREENZONE_DATABASE_URL", "")
        if not admin_url:
            postgres = EmbeddedPostgres(Path(tmp.name) / "pg" / "data", fast=False)  # fsync on
            postgres.start()
            admin_url = postgres.url
        bootstrap = os.environ.get("GREENZONE_KAFKA_BOOTSTRAP", "")
        if not bootstrap:
            tansu = Tansu(log_path=Path(tmp.name) / "tansu.log").start()
            bootstrap = tansu.bootstrap
        yield Stack(
            admin_url=admin_url,
            bootstrap=bootstrap,
            external_db=postgres is None,
            external_broker=tansu is None,
            postgres=postgres,
            tansu=tansu,
            tmp=tmp,
        )
    finally:
        try:
            if tansu is not None:
                tansu.stop()
        finally:
            try:
                if postgres is not None:
                    postgres.stop()
            finally:
                tmp.cleanup()


async def create_database(stack: Stack) -> None:
    stack.database = f"greenzone_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(stack.admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{stack.database}"')
    finally:
        await conn.close()
    base, _, _ = stack.admin_url.partition("?")[0].rpartition("/")
    stack.database_url = f"{base}/{stack.database}"


async def drop_database(stack: Stack) -> None:
    if not stack.database or not stack.external_db:
        return  # the embedded cluster goes with its directory
    conn = await asyncpg.connect(stack.admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{stack.database}" WITH (FORCE)')
    finally:
        await conn.close()


async def start_producer(settings: CommonSettings) -> AIOKafkaProducer:
    producer = kafka.producer(settings)  # the services' producer settings (acks=all, linger 5 ms, 256 KiB batches)
    await producer.start()
    return producer


async def warm_metadata(producer: AIOKafkaProducer, *topics: str) -> None:
    for topic in topics:
        for _ in range(100):
            if await producer.partitions_for(topic):
                break
            await asyncio.sleep(0.1)


async def delete_topics(settings: CommonSettings, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        await admin.delete_topics(topics)
    except Exception as exc:  # best effort: only matters on an external broker
        console.print(f"[yellow]could not delete topics {topics}: {exc}[/]")
    finally:
        await admin.close()


# --------------------------------------------------------------------------------------------------- data


SERVICES = ["payments-api", "checkout-web", "ledger", "identity", "search", "notifications", "catalog", "billing"]
ENVIRONMENTS = ["dev", "staging", "production"]
PEOPLE = ["alice@example.com", "bob@example.com", "carol@example.com", "dan@example.com"]
VERBS = ["Upgrade", "Roll out", "Hotfix", "Migrate", "Reconfigure"]


def change_events(n: int, seed: int = 42) -> list[ChangeCreated]:
    """N ChangeCreated as change-svc's create_change builds them (risk from its policy, a few commits)."""
    from change_svc.changes import policy

    rnd = random.Random(seed)
    now = datetime.now(UTC)
    events: list[ChangeCreated] = []
    for i in range(n):
        change_type = rnd.choice(["standard", "normal", "normal", "emergency"])
        environment = rnd.choice(ENVIRONMENTS)
        service = rnd.choice(SERVICES)
        commits = ["".join(rnd.choices("0123456789abcdef", k=40)) for _ in range(rnd.randint(1, 8))]
        planned = rnd.random() < 0.7
        start = now + timedelta(hours=rnd.randint(1, 72)) if planned else None
        end = start + timedelta(hours=1) if start else None
        risk = policy.assess_risk(
            policy.RiskInput(
                type=change_type, environment=environment, commits=len(commits), planned_start=start, planned_end=end
            )
        )
        version = f"{rnd.randint(1, 9)}.{rnd.randint(0, 40)}.{rnd.randint(0, 20)}"
        events.append(
            ChangeCreated(
                change_id=str(uuid.uuid4()),
                number=f"CHG-{i + 1:06d}",
                title=f"{rnd.choice(VERBS)} {service} to {version} in {environment}",
                type=change_type,
                service=service,
                environment=environment,
                requested_by=rnd.choice(PEOPLE),
                planned_start=start,
                planned_end=end,
                version=version,
                commits=commits,
                risk=asdict(risk),
                release_id=str(uuid.uuid4()) if rnd.random() < 0.5 else None,
                created_at=now,
            )
        )
    return events


def outbox_rows(outbox: Outbox, events: Sequence[ChangeCreated]) -> list[dict[str, Any]]:
    """``Outbox.row`` for each event, each inside a request-like span so the row carries a ``traceparent``."""
    tracer = trace.get_tracer("bench")
    rows = []
    for event in events:
        with tracer.start_as_current_span("POST /changes"):
            rows.append(outbox.row(event))
    return rows


async def insert_outbox(conn: asyncpg.Connection, schema: str, rows: Sequence[dict[str, Any]]) -> None:
    records = [
        (
            r["id"],
            r["topic"],
            r["key"],
            r["type"],
            r["source"],
            r["subject"],
            r["time"],
            json.dumps(r["data"]),
            json.dumps(r["headers"]),
        )
        for r in rows
    ]
    await conn.copy_records_to_table("outbox", schema_name=schema, columns=list(OUTBOX_COLUMNS), records=records)
    await conn.execute(f'ANALYZE "{schema}".outbox')


async def encoded_like_the_relay(conn: asyncpg.Connection, schema: str) -> list[tuple[bytes, bytes, Any]]:
    """The key, value and headers the relay will produce for each outbox row (byte for byte, untimed)."""
    rows = await conn.fetch(
        f"SELECT id::text AS id, source, type, subject, time, data::text AS data, headers::text AS headers "
        f'FROM "{schema}".outbox ORDER BY seq'
    )
    return [
        envelope.encode(
            id=r["id"],
            source=r["source"],
            type=r["type"],
            subject=r["subject"],
            time=r["time"],
            data=r["data"].encode(),
            trace=json.loads(r["headers"]),
        )
        for r in rows
    ]


# --------------------------------------------------------------------------------------------------- measurements


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    unit: str
    notes: list[str] = field(default_factory=list)
    of: int | None = None  # set when only ``count`` of ``of`` were done in time

    @property
    def counted(self) -> str:
        return f"{self.count:,}" if self.of is None else f"{self.count:,} of {self.of:,} (timed out)"

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


@contextlib.contextmanager
def maybe_profile(directory: Path | None, name: str) -> Iterator[None]:
    if directory is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.pstats"
        profiler.dump_stats(path)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        (directory / f"{name}.txt").write_text(out.getvalue())
        console.print(f"[dim]profile of {name}: {path}[/]")


async def bench_relay(
    settings: CommonSettings, producer: AIOKafkaProducer, schema: str, n: int, profile: Path | None
) -> Result:
    relay = Relay(settings, schema, producer)
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        with maybe_profile(profile, "relay"):
            started = time.perf_counter()
            while await relay.publish(conn):  # as the relay loop publishes: batches overlapping
                pass
            seconds = time.perf_counter() - started
        left, _ = await backlog(conn, schema)
    finally:
        await conn.close()
    if left or relay.stats.published != n:
        raise RuntimeError(f"relay published {relay.stats.published} of {n}; {left} left in the outbox")
    return Result(
        "relay (outbox → Kafka)",
        n,
        seconds,
        "msg/s",
        [f"{relay.stats.batches} batches of ≤ {settings.relay_batch_size}"],
    )


async def bench_raw_produce(
    producer: AIOKafkaProducer, topic: str, messages: Sequence[tuple[bytes, bytes, envelope.KafkaHeaders]]
) -> Result:
    started = time.perf_counter()
    futures = [await producer.send(topic, value=value, key=key, headers=headers) for key, value, headers in messages]
    await asyncio.gather(*futures)
    seconds = time.perf_counter() - started
    return Result("raw aiokafka send() + gather", len(messages), seconds, "msg/s")


async def bench_consumer(
    settings: CommonSettings,
    producer: AIOKafkaProducer,
    topic: str,
    group: str,
    n: int,
    timeout: float,
    instrument_sql: bool,
    profile: Path | None,
) -> tuple[Result, Result]:
    import report_svc.main  # noqa: F401 - registers the projection tables on the report metadata
    from report_svc.db import Base as ReportBase
    from report_svc.projections.handlers import change_subscription

    engine = make_engine(settings)
    if instrument_sql:  # as service.py's lifespan does
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    sessions = make_sessionmaker(engine)
    inbox = plumbing_tables(ReportBase.metadata).inbox  # as create_service_app builds it
    real = change_subscription()
    topics = list(real.topics) if topic in real.topics else [topic]
    subscription = Subscription(group=group, topics=topics, handlers=dict(real.handlers))
    runner = ConsumerRunner(settings, sessions, inbox, producer, subscription)
    ready_at: float | None = None
    task: asyncio.Task[None] | None = None
    timed_out = False
    try:
        with maybe_profile(profile, "consumer"):
            started = time.perf_counter()
            task = asyncio.create_task(runner.run(), name="bench.consumer")
            deadline = started + timeout
            # stats.applied grows after each batch's commit, so this is when report.change_events holds n rows
            while runner.stats.applied < n:
                if ready_at is None and runner.ready.is_set():
                    ready_at = time.perf_counter()
                if task.done():
                    task.result()
                    raise RuntimeError("the consumer stopped")
                if time.perf_counter() > deadline:
                    timed_out = True  # report the rate so far rather than nothing
                    break
                await asyncio.sleep(0.01)
            finished = time.perf_counter()
            applied = runner.stats.applied
        await asyncio.sleep(0.5)  # let the last offset commit finish before cancelling the runner
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        events = await conn.fetchval("SELECT count(*) FROM report.change_events")
        changes = await conn.fetchval("SELECT count(*) FROM report.changes")
        inboxed = await conn.fetchval("SELECT count(*) FROM report.inbox WHERE consumer_group = $1", runner.group)
    finally:
        await conn.close()
    if timed_out:
        # the runner was cancelled after ``applied``: a batch in flight may have committed since
        if not (events == changes == inboxed and applied <= events):
            raise RuntimeError(f"rows disagree: change_events={events} changes={changes} inbox={inboxed}")
    elif not events == changes == inboxed == n:
        raise RuntimeError(f"expected {n} rows: change_events={events} changes={changes} inbox={inboxed}")
    s = runner.stats
    notes = [
        f"TIMED OUT after {timeout:.0f}s: {applied:,} of {n:,} applied, rate over those"
        if timed_out
        else f"report.change_events = report.changes = inbox rows = {n:,}",
        f"duplicates {s.duplicates}, dead-lettered {s.dead_lettered}, ignored {s.ignored}",
    ]
    join = (ready_at - started) if ready_at is not None else 0.0
    partial = n if timed_out else None
    total = Result("consumer with inbox (report-svc)", applied, finished - started, "events/s", notes, partial)
    steady = Result(
        "consumer, after partitions assigned",
        applied,
        finished - started - join,
        "events/s",
        [f"group join + topic check took {join:.2f}s"],
        partial,
    )
    return total, steady


async def bench_raw_inserts(
    conn: asyncpg.Connection,
    group: str,
    events: Sequence[ChangeCreated],
    rows: Sequence[dict[str, Any]],
    batch: int,
    with_upsert: bool,
) -> Result:
    """executemany of the rows the consumer writes, one transaction per ``batch`` (the consumer's commit unit)."""
    suffix = "_u" if with_upsert else ""
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCRATCH}")
    for table in ("inbox", "change_events", "changes"):
        await conn.execute(f"CREATE TABLE {SCRATCH}.{table}{suffix} (LIKE report.{table} INCLUDING ALL)")
    inbox_sql = f"INSERT INTO {SCRATCH}.inbox{suffix} (consumer_group, ce_id, ce_type) VALUES ($1, $2, $3)"
    events_sql = (
        f"INSERT INTO {SCRATCH}.change_events{suffix} (change_id, ce_id, type, occurred_at) VALUES ($1, $2, $3, $4)"
    )
    upsert_sql = (
        f"INSERT INTO {SCRATCH}.changes{suffix} (change_id, number, title, type, service, environment, state, "
        "requested_by, version, risk_level, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, 'draft', $7, $8, $9, $10, $10) ON CONFLICT (change_id) DO UPDATE SET "
        "number = excluded.number, title = excluded.title, type = excluded.type, service = excluded.service, "
        "environment = excluded.environment, requested_by = excluded.requested_by, version = excluded.version, "
        "risk_level = excluded.risk_level, created_at = excluded.created_at"
    )
    inbox_args = [(group, str(r["id"]), r["type"]) for r in rows]
    event_args = [(r["key"], str(r["id"]), r["type"], r["time"]) for r in rows]
    upsert_args = [
        (
            e.change_id,
            e.number,
            e.title,
            e.type,
            e.service,
            e.environment,
            e.requested_by,
            e.version,
            e.risk.level,
            e.created_at,
        )
        for e in events
    ]
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        async with conn.transaction():
            await conn.executemany(inbox_sql, inbox_args[i : i + batch])
            if with_upsert:
                await conn.executemany(upsert_sql, upsert_args[i : i + batch])
            await conn.executemany(events_sql, event_args[i : i + batch])
    seconds = time.perf_counter() - started
    tables = "inbox + changes upsert + change_events" if with_upsert else "inbox + change_events"
    name = f"raw executemany {tables}"
    return Result(name, len(rows), seconds, "rows/s", [f"one transaction per {batch} rows"])


# --------------------------------------------------------------------------------------------------- report


def fmt_rate(r: float) -> str:
    return f"{r:,.0f}"


def print_results(
    relay: Result,
    raw_produce: Result,
    consumer: Result,
    raw_insert: Result,
    extras: Sequence[Result],
    facts: dict[str, str],
) -> None:
    table = Table(title="Greenzone messaging throughput", title_justify="left")
    for col, justify in (
        ("measurement", "left"),
        ("count", "right"),
        ("seconds", "right"),
        ("rate/s", "right"),
        ("baseline rate/s", "right"),
        ("ratio", "right"),
        ("target", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for result, base, target in ((relay, raw_produce, RELAY_TARGET), (consumer, raw_insert, CONSUMER_TARGET)):
        ok = result.rate >= target
        verdict = "[green]PASS[/]" if ok else "[red]FAIL[/]"
        table.add_row(
            result.name,
            result.counted,
            f"{result.seconds:.2f}",
            f"{fmt_rate(result.rate)} {result.unit}",
            f"{fmt_rate(base.rate)} {base.unit}",
            f"{result.rate / base.rate:.2f}",
            f"≥ {target:,} {result.unit} {verdict}",
        )
    console.print(table)
    console.print(f"baselines: relay ← {raw_produce.name}; consumer ← {raw_insert.name}")
    console.print()

    details = Table(title="Baselines and details", title_justify="left")
    for col in ("measurement", "count", "seconds", "rate/s", "notes"):
        details.add_column(col, justify="right" if col in ("count", "seconds", "rate/s") else "left")
    for r in (raw_produce, raw_insert, *extras, relay, consumer):
        details.add_row(r.name, r.counted, f"{r.seconds:.2f}", f"{fmt_rate(r.rate)} {r.unit}", "; ".join(r.notes))
    console.print(details)

    machine = Table(title="Machine", title_justify="left", show_header=False)
    machine.add_column("fact")
    machine.add_column("value")
    for k, v in facts.items():
        machine.add_row(k, v)
    console.print(machine)


# --------------------------------------------------------------------------------------------------- main


@contextlib.asynccontextmanager
async def producer_for(settings: CommonSettings) -> AsyncIterator[AIOKafkaProducer]:
    producer = await start_producer(settings)
    try:
        yield producer
    finally:
        await producer.stop()


async def run(stack: Stack, args: argparse.Namespace) -> bool:
    from change_svc.db import Base as ChangeBase
    from change_svc.main import SPEC as CHANGE_SPEC
    from report_svc.main import SPEC as REPORT_SPEC

    n: int = args.events
    profile: Path | None = args.profile
    await create_database(stack)
    try:
        settings = CommonSettings(
            env="development",
            service_name="bench",
            database_url=stack.database_url,
            kafka_bootstrap=stack.bootstrap,
            log_level="WARNING",
        )
        telemetry.configure_logging("bench", "WARNING", json_logs=False)
        if not args.no_telemetry:
            telemetry.configure_tracing("bench")  # the SDK provider every service installs

        console.print(f"[bold]setup[/]: database {stack.database}, broker {stack.bootstrap}, {n:,} events")
        await migrate(settings, CHANGE_SPEC.migrations, CHANGE_SPEC.schema)
        await migrate(settings, REPORT_SPEC.migrations, REPORT_SPEC.schema)
        run_id = uuid.uuid4().hex[:8]
        raw_topic = f"bench.raw.{run_id}"
        # On an external broker the events go to a topic of their own: none of a real greenzone.change's history
        # to wade through, and no 50,000 made-up changes for the real report-svc to project.
        change_topic = f"{CHANGE_TOPIC}.bench.{run_id}" if stack.external_broker else CHANGE_TOPIC
        bench_topics = [raw_topic, *kafka.with_dlqs([change_topic])] if stack.external_broker else []
        await kafka.ensure_topics(
            settings, kafka.with_dlqs([*CHANGE_SPEC.produces, *REPORT_SPEC.produces, change_topic])
        )
        await kafka.ensure_topics(settings, [raw_topic])  # same partition count as the services' topics
        group = f"bench.report.{run_id}"  # a fresh consumer group

        events = change_events(n)
        change_outbox = Outbox(plumbing_tables(ChangeBase.metadata).outbox, source=CHANGE_SPEC.source)
        rows = outbox_rows(change_outbox, events)
        for row in rows:
            row["topic"] = change_topic
        conn = await asyncpg.connect(settings.asyncpg_dsn)
        try:
            await insert_outbox(conn, CHANGE_SPEC.schema, rows)
            messages = await encoded_like_the_relay(conn, CHANGE_SPEC.schema)
        finally:
            await conn.close()
        mean_value = sum(len(v) for _, v, _ in messages) / n
        mean_headers = sum(len(k) + len(v) for _, _, h in messages for k, v in h) / n

        async with producer_for(settings) as producer:
            await warm_metadata(producer, change_topic, raw_topic)
            console.print("[bold]relay[/] …")
            relay = await bench_relay(settings, producer, CHANGE_SPEC.schema, n, profile)
            console.print(f"  {fmt_rate(relay.rate)} msg/s")
            console.print("[bold]raw produce[/] …")
            raw_produce = await bench_raw_produce(producer, raw_topic, messages)
            console.print(f"  {fmt_rate(raw_produce.rate)} msg/s")
            console.print("[bold]consumer with inbox[/] …")
            consumer, steady = await bench_consumer(
                settings,
                producer,
                change_topic,
                group,
                n,
                args.timeout,
                instrument_sql=not args.no_telemetry,
                profile=profile,
            )
            console.print(f"  {fmt_rate(consumer.rate)} events/s")
        if bench_topics:
            await delete_topics(settings, bench_topics)

        console.print("[bold]raw inserts[/] …")
        conn = await asyncpg.connect(settings.asyncpg_dsn)
        try:
            raw_insert = await bench_raw_inserts(conn, group, events, rows, settings.consumer_batch_size, False)
            raw_full = await bench_raw_inserts(conn, group, events, rows, settings.consumer_batch_size, True)
            server = await conn.fetchval("SHOW server_version")
            fsync = await conn.fetchval("SHOW fsync")
            sync_commit = await conn.fetchval("SHOW synchronous_commit")
        finally:
            await conn.close()
        console.print(f"  {fmt_rate(raw_insert.rate)} rows/s")

        raw_produce.notes.append(f"value {mean_value:.0f} B, headers {mean_headers:.0f} B, key 36 B (mean)")
        facts = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "CPUs": str(os.cpu_count()),
            "load average": f"{args.load_before} before, {_load()} after (other work on the machine skews the rates)",
            "CPU model": _cpu_model(),
            "Python": f"{platform.python_version()} ({platform.python_implementation()})",
            "platform": platform.platform(),
            "PostgreSQL": f"{server} ({'external' if stack.external_db else 'embedded'}; fsync={fsync}, "
            f"synchronous_commit={sync_commit})",
            "broker": f"{'external' if stack.external_broker else 'Tansu (memory engine)'} at {stack.bootstrap}",
            "libraries": f"aiokafka {aiokafka.__version__}, asyncpg {asyncpg.__version__}",
            "settings": f"relay_batch_size={settings.relay_batch_size}, "
            f"consumer_batch_size={settings.consumer_batch_size}, tracing={'off' if args.no_telemetry else 'SDK'}",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
        }
        print_results(relay, raw_produce, consumer, raw_insert, [raw_full, steady], facts)
        return relay.rate >= RELAY_TARGET and consumer.rate >= CONSUMER_TARGET
    finally:
        await drop_database(stack)


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=50_000, help="events per measurement (default 50,000)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="consumer phase limit in seconds; past it the rate so far is reported",
    )
    parser.add_argument("--no-telemetry", action="store_true", help="no SDK tracer provider, no SQL instrumentation")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats of relay and consumer here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    args.load_before = _load()
    if args.events < 1:
        parser.error("--events must be positive")
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop PostgreSQL and the broker (own sessions: they would
    # outlive us otherwise)
    signal.signal(signal.SIGTERM, _terminate)
    with started_stack() as stack:
        ok = asyncio.run(run(stack, args))
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
