"""Traces from the POST to each try of its job, with the SDK's in-memory exporter (the OTLP wire is in tests/e2e)."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.worker import Worker
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from service.core import keys
from service.core.record import Field
from service.core.tracing import Tracing
from service.settings import Settings
from service.web.app import create_app
from tests.integration.helpers import auth


def attr(item: Any, name: str) -> Any:
    """An attribute of a span or an event (the SDK types `attributes` as optional)."""
    return (item.attributes or {})[name]


@pytest.fixture
def exported() -> tuple[InMemorySpanExporter, InMemorySpanExporter]:
    return InMemorySpanExporter(), InMemorySpanExporter()


@pytest.fixture
async def traced_client(
    settings: Settings, arq_pool: ArqRedis, exported: tuple[InMemorySpanExporter, InMemorySpanExporter]
) -> AsyncIterator[AsyncClient]:
    tracing = Tracing.with_exporter(exported[0], "fastapi-arq-jobs-web", batch=False)
    application = create_app(settings, tracing=tracing)
    async with (
        LifespanManager(application) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


def traced_worker(worker: Callable[..., Worker], exporter: InMemorySpanExporter, **kwargs: Any) -> Worker:
    return worker(tracing=Tracing.with_exporter(exporter, "fastapi-arq-jobs-worker", batch=False), **kwargs)


def named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


async def test_the_post_and_every_try_of_its_job_are_one_trace(
    traced_client: AsyncClient,
    worker: Callable[..., Worker],
    exported: tuple[InMemorySpanExporter, InMemorySpanExporter],
) -> None:
    web, work = exported
    response = await traced_client.post("/send-notification/flaky@example.com")  # busy twice, then delivered
    job_id = response.json()["task_id"]
    for _ in range(3):
        await traced_worker(worker, work, max_burst_jobs=1).main()
    assert (await traced_client.get(f"/jobs/{job_id}")).json()["status"] == "SUCCESS"

    web_spans = web.get_finished_spans()
    (server,) = [s for s in web_spans if s.kind is SpanKind.SERVER and s.name.startswith("POST")]
    (enqueue,) = named(web_spans, "enqueue send_notification")
    assert enqueue.kind is SpanKind.PRODUCER
    assert enqueue.parent is not None and enqueue.parent.span_id == server.context.span_id
    assert enqueue.attributes == {
        "job.kind": "send_notification",
        "job.queue": "default",
        "job.id": job_id,
        "messaging.system": "arq",
    }

    tries = sorted(named(work.get_finished_spans(), "run send_notification"), key=lambda s: attr(s, "job.try"))
    assert [attr(t, "job.try") for t in tries] == [1, 2, 3]
    for span in tries:
        assert span.kind is SpanKind.CONSUMER
        assert span.context.trace_id == server.context.trace_id  # one trace, from the request to the last try
        assert span.parent is not None and span.parent.span_id == enqueue.context.span_id
        assert attr(span, "job.id") == job_id
        assert attr(span, "job.queue") == "default"
        assert attr(span, "job.queue_wait_s") >= 0
        assert span.resource.attributes["service.name"] == "fastapi-arq-jobs-worker"
    assert [attr(t, "job.outcome") for t in tries] == ["retry", "retry", "success"]
    assert [e.name for e in tries[0].events] == ["retry"]
    # A retry links to the try before it.
    assert tries[0].links == ()
    assert [link.context.span_id for link in tries[1].links] == [tries[0].context.span_id]
    assert [link.context.span_id for link in tries[2].links] == [tries[1].context.span_id]
    # The delivery's effect is an event of the try that wrote it.
    assert [(e.name, attr(e, "job.effect.written")) for e in tries[2].events] == [("effect", True)]


async def test_a_failure_marks_its_span_and_progress_is_an_event(
    traced_client: AsyncClient,
    worker: Callable[..., Worker],
    exported: tuple[InMemorySpanExporter, InMemorySpanExporter],
    settings: Settings,
) -> None:
    _, work = exported
    await traced_client.post("/send-notification/bounce@example.com")
    await traced_client.post("/reports", json={"rows": 3}, headers=auth(settings, "alice"))
    await traced_worker(worker, work).main()
    spans = work.get_finished_spans()
    (bounce,) = named(spans, "run send_notification")
    assert bounce.status.status_code is StatusCode.ERROR
    assert bounce.status.description == "550 mailbox unavailable: the address does not exist"
    assert [e.name for e in bounce.events] == ["exception"]
    (report,) = named(spans, "run generate_report")
    progress = [e.attributes for e in report.events if e.name == "progress"]
    assert progress[0] == {"job.progress.current": 0, "job.progress.total": 3}
    assert progress[-1] == {"job.progress.current": 3, "job.progress.total": 3}
    assert report.status.status_code is StatusCode.UNSET


async def test_untraced_nothing_is_stored_and_no_span_is_made(
    client: AsyncClient, worker: Callable[..., Worker], arq_pool: ArqRedis, settings: Settings
) -> None:
    assert settings.otel_exporter_otlp_endpoint is None
    assert Tracing.start(None, "any") is None
    job_id = (await client.post("/tasks", json={"type": 0})).json()["task_id"]
    assert await arq_pool.hget(keys.job_record(job_id), Field.TRACEPARENT) is None  # type: ignore[misc]
    w = worker()
    assert w.tracing is None  # type: ignore[attr-defined]
    await w.main()
    assert (await client.get(f"/jobs/{job_id}")).json()["status"] == "SUCCESS"
