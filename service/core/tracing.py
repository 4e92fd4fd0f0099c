"""OpenTelemetry traces, from the POST that enqueues a job to each try of it, when OTEL_EXPORTER_OTLP_ENDPOINT is set.

The SDK and its FastAPI instrumentation are an optional extra (`pip install 'fastapi-arq-jobs[otel]'`, which
`make install` installs). With the endpoint unset nothing of it is imported, no exporter runs and no span is made:
`Tracing.start()` returns None, and the code paths test for None and do nothing else.

How a trace crosses Redis: the enqueue runs in a PRODUCER span (a child of the request's server span) and stores
its W3C `traceparent` in the job's record. Each try runs in a CONSUMER span whose parent is that enqueue span, so
the request and every try of its job are one trace; a retry's span also links to the try before it (whose
context the failed try leaves in the record). Progress and effects are events on the try's span.

Each process has its own `TracerProvider`, which this module never makes global: an application's own global
provider, if it has one, is left alone, and several apps or workers in one process (tests) do not share one.
"""

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

    from service.settings import Settings

logger = logging.getLogger(__name__)

INSTALL_HINT = "tracing needs the otel extra: pip install 'fastapi-arq-jobs[otel]' (make install does)"


@dataclass
class Tracing:
    """One process's tracer: its provider (flushed and shut down by `shutdown`) and the tracer it hands out."""

    provider: "TracerProvider"
    tracer: "Tracer" = field(init=False)

    def __post_init__(self) -> None:
        self.tracer = self.provider.get_tracer("fastapi-arq-jobs")

    @classmethod
    def start(cls, endpoint: str | None, service_name: str) -> "Tracing | None":
        """The process's tracing if `endpoint` (OTLP over HTTP, the SDK's base URL: `/v1/traces` is added) is set;
        None otherwise, and then nothing of OpenTelemetry is even imported."""
        if not endpoint:
            return None
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as e:
            raise RuntimeError(INSTALL_HINT) from e
        return cls.with_exporter(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"), service_name)

    @classmethod
    def from_settings(cls, settings: "Settings", role: str) -> "Tracing | None":
        """`start` with OTEL_EXPORTER_OTLP_ENDPOINT, named OTEL_SERVICE_NAME or `fastapi-arq-jobs-<role>`."""
        return cls.start(settings.otel_exporter_otlp_endpoint, settings.otel_service_name or f"fastapi-arq-jobs-{role}")

    @classmethod
    def with_exporter(cls, exporter: "SpanExporter", service_name: str, *, batch: bool = True) -> "Tracing":
        """Tracing into `exporter` (the SDK's in-memory exporter in unit tests, with `batch=False`)."""
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
        return cls(provider)

    def shutdown(self) -> None:
        """Export what is left and stop (blocking: the SDK's exporter is synchronous)."""
        self.provider.shutdown()

    @contextmanager
    def enqueue_span(self, name: str, queue: str) -> Iterator[tuple["Span", str | None]]:
        """A PRODUCER span around an enqueue, and the `traceparent` to store with the job."""
        from opentelemetry import propagate, trace

        with self.tracer.start_as_current_span(f"enqueue {name}", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attributes({"job.kind": name, "job.queue": queue, "messaging.system": "arq"})
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            yield span, carrier.get("traceparent")

    @contextmanager
    def try_span(
        self, name: str, attributes: Mapping[str, Any], traceparent: str | None, previous_try: str | None
    ) -> Iterator["Span"]:
        """The CONSUMER span of one try: a child of the enqueue, linked to the previous try if there was one."""
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        propagator = TraceContextTextMapPropagator()
        parent = propagator.extract({"traceparent": traceparent}) if traceparent else None
        links = []
        if previous_try:
            previous = trace.get_current_span(propagator.extract({"traceparent": previous_try})).get_span_context()
            if previous.is_valid:
                links.append(trace.Link(previous, {"job.link": "previous try"}))
        with self.tracer.start_as_current_span(
            f"run {name}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            links=links,
            # The caller records a failure; a retry or an abort is not an error of the span.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.set_attributes(dict(attributes))
            yield span


def current_traceparent() -> str | None:
    """The W3C context of the current span (a try's, when it ends in a retry), if tracing is on."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def event(name: str, attributes: Mapping[str, Any]) -> None:
    """Add an event to the current span, if there is a recording one (never when tracing is off)."""
    try:
        from opentelemetry import trace
    except ImportError:  # the extra is not installed: there is no span
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, dict(attributes))


def error_status(description: str) -> Any:
    """A span's ERROR status, with the job's public error message (never a path or an argument)."""
    from opentelemetry.trace import Status, StatusCode

    return Status(StatusCode.ERROR, description)


def instrument_app(app: Any, tracing: Tracing) -> None:
    """The FastAPI instrumentation, on this app only, into this process's provider."""
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError as e:
        raise RuntimeError(INSTALL_HINT) from e
    # /metrics and /health are scraped every few seconds: spans of them would drown the jobs' traces. The ASGI
    # send/receive spans (two or three more per request, each exported) are left out: with them, traced status reads
    # ran at 0.41x of untraced ones here; without, at 0.50x.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracing.provider, excluded_urls="/metrics,/health", exclude_spans=["receive", "send"]
    )
