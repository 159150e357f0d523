"""The app factory every service uses: plumbing wired once, so a service's main.py only names its parts.

Lifespan: logging and tracing, engine, migrations (``GREENZONE_MIGRATE_ON_START``), topics, the Kafka producer, the
outbox relay and the consumers; all stopped on shutdown. Routes: ``/healthz``, ``/readyz``, ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import structlog
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from greenzone_common import heartbeat, kafka, middleware, problems, relay, telemetry
from greenzone_common.auth import Authenticator
from greenzone_common.consumer import ConsumerRunner, Subscription
from greenzone_common.db import make_engine, make_sessionmaker
from greenzone_common.migrations import migrate
from greenzone_common.outbox import Outbox
from greenzone_common.plumbing import PlumbingTables, plumbing_tables
from greenzone_common.settings import CommonSettings

log = structlog.get_logger(__name__)


@dataclass
class ServiceSpec:
    name: str  # "change-svc"
    schema: str  # "change"
    metadata: MetaData
    migrations: Path
    routers: Sequence[APIRouter] = ()
    produces: Sequence[str] = ()
    # built at startup, once the app state (sessions, outbox) exists
    subscriptions: Callable[[FastAPI], Sequence[Subscription]] = field(default=lambda app: ())
    description: str = ""

    @property
    def source(self) -> str:
        return f"/greenzone/{self.name}"


@dataclass
class Runtime:
    """Everything the lifespan builds, on ``app.state.runtime``."""

    settings: CommonSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    outbox: Outbox
    tables: PlumbingTables
    relay: relay.Relay | None = None
    consumers: list[ConsumerRunner] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


# The dependencies are ``async def`` although they do no I/O: FastAPI runs a plain ``def`` dependency in the thread
# pool, a thread hop per dependency per request.
async def runtime(request: Request) -> Runtime:
    return _runtime(request)


async def sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return _runtime(request).sessions


async def outbox(request: Request) -> Outbox:
    return _runtime(request).outbox


RuntimeDep = Annotated[Runtime, Depends(runtime)]
SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(sessions)]
OutboxDep = Annotated[Outbox, Depends(outbox)]


async def _start_producer(settings: CommonSettings) -> AIOKafkaProducer:
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(60),
        wait=wait_exponential(multiplier=0.2, max=3),
        retry=retry_if_exception_type(Exception),
        reraise=True,
    ):
        with attempt:
            producer = kafka.producer(settings)
            try:
                await producer.start()
            except Exception:
                await producer.stop()
                raise
    return producer


def create_service_app(spec: ServiceSpec, settings: CommonSettings) -> FastAPI:
    tables = plumbing_tables(spec.metadata)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        telemetry.configure_logging(spec.name, settings.log_level, settings.log_json)
        provider = telemetry.configure_tracing(spec.name)
        engine = make_engine(settings)
        instrumentor = SQLAlchemyInstrumentor()
        # a span per statement costs even when nothing records it (the instrumentation parses the URL and names the
        # operation every time): only where spans are recorded
        if telemetry.records_spans(provider) and not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(engine=engine.sync_engine)  # one engine per process outside tests
        if settings.migrate_on_start:
            await migrate(settings, spec.migrations, spec.schema)
        topics = kafka.with_dlqs(spec.produces)
        await kafka.ensure_topics(settings, topics)
        producer = await _start_producer(settings)
        service_relay = relay.Relay(settings, spec.schema, producer) if settings.relay_enabled else None
        waker = relay.Waker(settings, spec.schema, service_relay)
        rt = Runtime(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            producer=producer,
            outbox=Outbox(tables.outbox, source=spec.source, waker=waker),
            tables=tables,
            relay=service_relay,
        )
        app.state.runtime = rt
        rt.tasks.append(asyncio.create_task(waker.run(), name=f"{spec.name}.relay-waker"))
        if service_relay is not None:
            rt.tasks.append(asyncio.create_task(service_relay.run(), name=f"{spec.name}.relay"))
        rt.tasks.append(
            asyncio.create_task(
                heartbeat.run(settings, spec.name, spec.schema, engine, producer, rt.consumers),
                name=f"{spec.name}.heartbeat",
            )
        )
        for sub in spec.subscriptions(app):
            runner = ConsumerRunner(settings, rt.sessions, tables.inbox, producer, sub)
            rt.consumers.append(runner)
            rt.tasks.append(asyncio.create_task(runner.run(), name=f"{spec.name}.consumer.{sub.group}"))
        _settle_garbage_collector()
        log.info("service.started", service=spec.name, schema=spec.schema)
        try:
            yield
        finally:
            await _shutdown(spec.name, rt)

    # Requests are traced by middleware.HttpTelemetry: FastAPI's own telemetry would trace them a second time (and
    # its operation spans, metrics and logs repeat what /metrics and structlog already give).
    app = FastAPI(
        title=f"Greenzone {spec.name}",
        description=spec.description,
        version="0.1.0",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.spec = spec
    app.state.authenticator = Authenticator(settings)
    problems.install(app)
    app.include_router(health_router(spec))
    for router in spec.routers:
        app.include_router(router)
    # outermost last: the span and metrics around everything (413s included), the size cap before anything reads
    # the body, then idempotency
    app.add_middleware(middleware.Idempotency, table=tables.idempotency, engine_of=_engine_of)
    app.add_middleware(middleware.BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(middleware.HttpTelemetry, service=spec.name)
    return app


SHUTDOWN_STEP_SECONDS = 10.0


#: ``gc.set_threshold`` for a running service. Python's default (700, 10, 10) collects the youngest generation every
#: 700 container allocations: a request in flight (a batch of 500 CloudEvents is some 20,000 dicts, lists and
#: models) outlives several collections, each of which scans it and promotes it to an older generation scanned again
#: later, although nearly all of it is freed by reference counting as soon as the request ends. Measured with
#: POST /events batches on 2 workers: 80 µs of service CPU an event with the default, 66-71 µs with these, and
#: 16,000 against 17,000-18,000 events/s. Cyclic garbage is still collected, in at most 50,000 allocations.
GC_THRESHOLDS = (50_000, 20, 100)


def _settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector off what startup built (modules, schemas, models, the app, compiled
    statements): measured under load, each full collection re-scanned all of it and stopped the event loop for
    60-270 ms every few seconds, stalling every request in flight. Frozen objects are never scanned; what requests
    allocate is still collected, less often (``GC_THRESHOLDS``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _shutdown(name: str, rt: Runtime) -> None:
    """Stop the background tasks, the producer and the engine; a step that hangs is logged and left behind, so a
    stuck dependency cannot keep the process from exiting."""
    for task in rt.tasks:
        task.cancel()
    if rt.tasks:
        _, pending = await asyncio.wait(rt.tasks, timeout=SHUTDOWN_STEP_SECONDS)
        if pending:
            log.warning("service.shutdown_tasks_stuck", tasks=[t.get_name() for t in pending])
    for step, stop in (("producer", rt.producer.stop), ("engine", rt.engine.dispose)):
        try:
            await asyncio.wait_for(stop(), SHUTDOWN_STEP_SECONDS)
        except TimeoutError:
            log.warning("service.shutdown_step_stuck", step=step)
    log.info("service.stopped", service=name)


def _engine_of(scope: Any) -> AsyncEngine:
    engine: AsyncEngine = scope["app"].state.runtime.engine
    return engine


def health_router(spec: ServiceSpec) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @router.get("/readyz")
    async def readyz(rt: RuntimeDep) -> JSONResponse:
        checks = {
            "database": await _database_ok(rt.engine),
            "broker": await kafka.broker_reachable(rt.producer),
        }
        ok = all(checks.values())
        body = {"status": "ready" if ok else "not ready", "service": spec.name, "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics")
    async def metrics(rt: RuntimeDep) -> Response:
        backlog, oldest_age = await relay.outbox_backlog(rt.engine, spec.schema)
        telemetry.OUTBOX_BACKLOG.labels(spec.name).set(backlog)
        telemetry.OUTBOX_OLDEST_AGE.labels(spec.name).set(oldest_age or 0.0)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _database_ok(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(2.0), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
