"""The application factory: lifespan (one Redis pool per process), routers and error handlers."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from arq.connections import ArqRedis
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from service.core.connections import close_redis, web_redis
from service.core.counters import MetricsBuffer
from service.core.tracing import Tracing, instrument_app
from service.kinds import Kinds, load_kinds
from service.settings import Settings, get_settings
from service.web import pages
from service.web.api import routers
from service.web.api.kinds import kinds_router
from service.web.errors import install_error_handlers
from service.web.middleware import BodyLimit

MAX_BODY_BYTES = 64 * 1024


class State(TypedDict):
    settings: Settings
    arq: ArqRedis
    metrics: MetricsBuffer
    kinds: Kinds
    tracing: Tracing | None


async def _cancel(task: "asyncio.Task[None]") -> None:
    task.cancel()
    await asyncio.wait({task}, timeout=5)  # bounded: a deploy's shutdown must not hang on a counter flush


def create_app(settings: Settings | None = None, *, tracing: Tracing | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts. Traced into `tracing`, or (when none is given)
    to OTEL_EXPORTER_OTLP_ENDPOINT if that is set."""
    settings = settings or get_settings()
    kinds = load_kinds(settings.job_kinds)
    tracing = tracing or Tracing.from_settings(settings, "web")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        async with AsyncExitStack() as stack:
            # No ping here: the app must start while Redis is down, and answer 503 until it is back.
            arq = web_redis(settings)
            # The pool was passed in explicitly, so redis-py closes it only when asked to.
            stack.push_async_callback(close_redis, arq)
            # This process's counts (enqueues), added to Redis every few seconds, before /metrics and at shutdown.
            metrics = MetricsBuffer()
            flusher = asyncio.create_task(metrics.flush_forever(arq), name="metrics-flush")
            stack.push_async_callback(metrics.flush, arq)
            stack.push_async_callback(_cancel, flusher)
            if tracing is not None:
                stack.push_async_callback(asyncio.to_thread, tracing.shutdown)  # the last spans go out first
            yield {"settings": settings, "arq": arq, "metrics": metrics, "kinds": kinds, "tracing": tracing}

    # `/docs` and `/redoc` load Swagger UI and ReDoc from the fastapi-offline package, not from a CDN: they work
    # with no internet, as the rest of the service does.
    app = FastAPIOffline(
        title="fastapi-arq-jobs",
        summary="Background jobs for FastAPI on arq and Redis",
        lifespan=lifespan,
        # The Celery tutorial's tests POST JSON without a Content-Type header. Accepting it opens no CSRF hole
        # here: nothing authenticates with cookies (reports use bearer tokens).
        strict_content_type=False,
        favicon_url="/favicon.ico",
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_body_size=MAX_BODY_BYTES)
    for router in [*routers, kinds_router(kinds)]:
        app.include_router(router)
    app.include_router(pages.router)
    app.mount("/static", pages.static_files, name="static")
    if tracing is not None:
        instrument_app(app, tracing)
    return app
