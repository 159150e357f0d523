"""OpenTelemetry traces, Prometheus metrics and structured JSON logs carrying trace ids.

Traces: HTTP (FastAPI instrumentation), database (SQLAlchemy instrumentation), Kafka (spans opened by the relay
and the consumer runner, with W3C ``traceparent`` carried in the outbox row and the Kafka headers). OTLP export when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("greenzone_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram("greenzone_http_request_seconds", "HTTP request latency", ["service", "method", "route"])
OUTBOX_PUBLISHED = Counter("greenzone_outbox_published_total", "Outbox rows published to Kafka", ["service"])
OUTBOX_BACKLOG = Gauge("greenzone_outbox_backlog", "Unpublished outbox rows", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "greenzone_outbox_oldest_unpublished_seconds", "Age of the oldest unpublished row", ["service"]
)
CONSUMED = Counter(
    "greenzone_events_consumed_total", "Events handled by consumers", ["service", "group", "topic", "result"]
)
DEAD_LETTERED = Counter("greenzone_events_dead_lettered_total", "Events sent to a DLQ", ["service", "group", "topic"])

_SECRET_KEY = re.compile(r"(secret|token|password|passwd|authorization|api[_-]?key|signature)", re.I)
REDACTED = "***"


def redact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of ``mapping`` with the values of secret-looking keys replaced (secrets never reach logs)."""
    return {key: REDACTED if _SECRET_KEY.search(str(key)) else _redact_value(value) for key, value in mapping.items()}


def _redact_value(value: Any) -> Any:
    # mappings nested in lists too: {"webhooks": [{"token": ...}]} must not leak
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return redact(event_dict)


def _add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


def configure_logging(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    renderer: Any = structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace_ids,
            _redact_processor,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")


def records_spans(provider: TracerProvider | None) -> bool:
    """Whether spans of ``provider`` can be recorded at all (not when its sampler drops every one)."""
    return provider is not None and provider.sampler is not ALWAYS_OFF


def configure_tracing(service: str) -> TracerProvider | None:
    """Install an SDK tracer provider once per process (tests may have installed their own first)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    exporting = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    # With nowhere to send spans, recording them is pure cost (a third of a request's CPU): spans are then not
    # sampled, yet still get trace ids, which logs carry and ``traceparent`` propagates through the outbox and Kafka.
    # ``OTEL_TRACES_SAMPLER`` (the SDK's own setting) still decides when it is set.
    sampler = None if exporting or os.environ.get("OTEL_TRACES_SAMPLER") else ALWAYS_OFF
    provider = TracerProvider(resource=Resource.create({"service.name": service}), sampler=sampler)
    if exporting:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
