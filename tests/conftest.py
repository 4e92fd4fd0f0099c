"""Shared fixtures: a private Valkey server, settings, the arq pool, the app through httpx, in-process workers."""

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.worker import Worker, get_kwargs
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from service.core.connections import web_redis
from service.dev.server import ValkeyServer, free_port
from service.engine import ServiceWorker, cron_jobs, functions
from service.kinds import load_kinds, queues_of
from service.settings import Settings
from service.web.app import create_app
from worker_settings import WorkerSettings

# Importing worker_settings puts the process on uvloop, for the `arq` worker processes (the e2e tests run those).
# In-process tests keep asyncio's own loop: at a test's teardown uvloop's loop.close() has hung here now and then
# (seen under the full suite), and arq's CLI never closes its loop.
asyncio.set_event_loop_policy(None)

# The plugin teams use (service.testing): its fixtures (job_*, jobs, run_jobs) are tested here too.
pytest_plugins = ["service.testing"]

TEST_SECRET = "test-secret-key-0123456789abcdef0123456789abcdef"
# Simulated delays at 1/100: a type-1 task sleeps 0.1 s, a notification 0.05 s.
TEST_SLEEP_SCALE = 0.01


@pytest.fixture
def report(record_property: Callable[[str, object], None]) -> Callable[[str], None]:
    """Record a measured figure (a recovery time, say); they are listed at the end of the run."""
    return lambda text: record_property("figure", text)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # user_properties travel from xdist workers with each report, so this sees every worker's figures.
    figures = [
        f"{report.nodeid.split('::')[-1]}: {value}"
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call"
        for name, value in report.user_properties
        if name == "figure"
    ]
    if figures:
        terminalreporter.section("measured figures")
        for line in figures:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def redis_server(job_redis_server: ValkeyServer) -> ValkeyServer:
    """The project's own valkey-server on a free port, in memory, one per test process (the plugin's, which teams
    use too: `service.testing`); never the machine's server on 6379."""
    return job_redis_server


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[..., ValkeyServer]]:
    """Private servers for tests that stop, freeze or restart Redis."""
    servers: list[ValkeyServer] = []

    def make(persistent: bool = False, port: int | None = None) -> ValkeyServer:
        server = ValkeyServer(port or free_port(), tmp_path / f"valkey-{len(servers)}", persistent=persistent)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def kind_module(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """`kind_module(prefix, source)`: a module of job kinds written to the test's folder and importable by the
    returned name, as a team's own kinds would be (name it in `job_kinds`); forgotten at the test's end."""
    names: list[str] = []
    sys.path.insert(0, str(tmp_path))

    def write(prefix: str, source: str) -> str:
        name = f"{prefix}_{tmp_path.name.replace('-', '_')}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    sys.path.remove(str(tmp_path))
    for name in names:
        sys.modules.pop(name, None)


def make_settings(tmp_path: Path, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "data_dir": tmp_path / "data",
        "sleep_scale": TEST_SLEEP_SCALE,
        "retry_backoff_scale": TEST_SLEEP_SCALE,  # a retry's 1-2 s back-off takes 10-20 ms
        "secret_key": TEST_SECRET,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, redis_server: ValkeyServer) -> Settings:
    return make_settings(tmp_path, redis_server.url)


@pytest.fixture
async def arq_pool(settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = web_redis(settings)
    await pool.flushdb()
    yield pool
    await pool.aclose(close_connection_pool=True)


@pytest.fixture
async def app(settings: Settings, arq_pool: ArqRedis) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application) as manager:
        yield manager.app  # type: ignore[misc]


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as c:
        yield c


@pytest.fixture
async def worker(arq_pool: ArqRedis, settings: Settings) -> AsyncIterator[Callable[..., Worker]]:
    """Build in-process workers from the real WorkerSettings (burst mode unless told otherwise)."""
    workers: list[Worker] = []
    mains: list[asyncio.Task[Any]] = []

    def make(**kwargs: Any) -> Worker:
        worker_settings = kwargs.pop("settings", settings)
        options: dict[str, Any] = {
            "redis_pool": web_redis(settings),
            "burst": True,
            "poll_delay": 0,
            "handle_signals": False,
            "settings": worker_settings,
            "functions": functions(kinds := load_kinds(worker_settings.job_kinds)),
            "cron_jobs": cron_jobs(kinds),
            "queues": worker_settings.worker_queues or queues_of(kinds),
            **kwargs,
        }
        w = ServiceWorker(**{**get_kwargs(WorkerSettings), **options})  # type: ignore[arg-type]  # arq's stubs want its own settings base
        workers.append(w)
        run_main = w.main

        async def main() -> None:
            mains.append(asyncio.current_task())  # type: ignore[arg-type]
            await run_main()

        w.main = main  # type: ignore[method-assign]
        return w

    yield make
    # A worker loop the test cancelled (or left running) ends before its pool closes: one cancelled mid-command
    # would otherwise return its connection to a closed pool, and leak it.
    for task in mains:
        task.cancel()
    if mains:
        await asyncio.wait(mains, timeout=5)
    for w in workers:
        # close() cancels jobs still in flight (arq's shutdown), and its gather then raises: a test that ends as
        # soon as a job's result is visible would race the job's last step (its after_job_end hook).
        if w.tasks:
            await asyncio.wait(list(w.tasks.values()), timeout=5)
        await w.close()


async def run_until(predicate: Callable[[], Any], what: str, give_up_after_s: float = 20) -> Any:
    """Await `predicate()` until it returns something truthy. The deadline is a hang guard, not a speed check."""

    async def loop() -> Any:
        # The state lives in Redis, read through the API: there is no in-process event to await.
        while not (value := await predicate()):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        return value

    try:
        return await asyncio.wait_for(loop(), give_up_after_s)
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what} after {give_up_after_s} s") from None
