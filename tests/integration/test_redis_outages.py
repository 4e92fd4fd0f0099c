"""Redis down, frozen, and back: 503 with Retry-After meanwhile, and the same app recovers by itself."""

import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from service.dev.server import ValkeyServer, free_port
from service.web.app import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.slow  # outages: left out of make test-fast

QUEUES = {"default": 0, "reports": 0}


@asynccontextmanager
async def client_for(tmp_path: Path, redis_url: str) -> AsyncIterator[AsyncClient]:
    app = create_app(make_settings(tmp_path, redis_url))
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


async def assert_unavailable(client: AsyncClient) -> list[float]:
    """Every Redis-backed endpoint answers 503 + Retry-After; returns how long each answer took."""
    took = []
    for method, path, body in [
        ("POST", "/tasks", {"type": 0}),
        ("GET", "/tasks/abc", None),
        ("GET", "/jobs/abc", None),
    ]:
        started = time.perf_counter()
        response = await client.request(method, path, json=body)
        took.append(time.perf_counter() - started)
        assert response.status_code == 503, (path, response.text)
        assert response.headers["retry-after"].isdigit()
        assert response.json() == {"detail": "the job queue is unavailable, try again shortly"}
    health = await client.get("/health")
    assert health.status_code == 503
    assert health.json() == {
        "status": "unavailable",
        "redis": "unavailable",
        "workers": 0,
        "queued": 0,
        "queues": {},
    }
    return took


async def test_the_app_starts_while_redis_is_down_and_recovers(
    tmp_path: Path, redis_server_factory: Callable[..., ValkeyServer]
) -> None:
    port = free_port()
    async with client_for(tmp_path, f"redis://127.0.0.1:{port}/0") as client:
        await assert_unavailable(client)
        redis_server_factory(port=port)
        assert (await client.get("/health")).json() == {
            "status": "ok",
            "redis": "ok",
            "workers": 0,
            "queued": 0,
            "queues": QUEUES,
        }
        assert (await client.post("/tasks", json={"type": 0})).status_code == 201


async def test_a_restart_is_ridden_out(tmp_path: Path, redis_server_factory: Callable[..., ValkeyServer]) -> None:
    server = redis_server_factory(persistent=True)
    async with client_for(tmp_path, server.url) as client:
        task_id = (await client.post("/tasks", json={"type": 2})).json()["task_id"]
        server.stop()
        await assert_unavailable(client)
        server.start()
        # Same process, same pool: it reconnects on its own, and the append-only file kept the queued job.
        assert (await client.get(f"/tasks/{task_id}")).json()["task_status"] == "PENDING"


async def test_a_frozen_redis_gives_503_not_a_hang(
    tmp_path: Path, redis_server_factory: Callable[..., ValkeyServer], report: Callable[[str], None]
) -> None:
    server = redis_server_factory()
    async with client_for(tmp_path, server.url) as client:
        assert (await client.post("/tasks", json={"type": 0})).status_code == 201
        server.signal(signal.SIGSTOP)
        try:
            took = await assert_unavailable(client)
        finally:
            server.signal(signal.SIGCONT)
        report(f"frozen Redis: 503 after {max(took):.2f} s at most (contract: about 2 s)")
        # A bound for a hang, not a race: the app's own timeouts (two tries of 0.8 s) answer well inside it.
        assert max(took) < 2.5
        assert (await client.post("/tasks", json={"type": 0})).status_code == 201
