"""/metrics (Prometheus text) and the dashboard's data: counted from Redis, so every process's work shows."""

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn
from arq.connections import ArqRedis
from arq.worker import Worker
from dirty_equals import IsPartialDict
from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError

from service.core import counters
from service.core.enqueue import enqueue
from service.dev.server import free_port
from service.settings import Settings
from tests.conftest import run_until
from tests.integration.helpers import auth


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_every_outcome(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    for _ in range(3):
        await client.post("/tasks", json={"type": 0})
    await client.post("/send-notification/bounce@example.com")
    await client.post("/send-notification/flaky@example.com")
    aborted = (await client.post("/tasks", json={"type": 1})).json()["task_id"]
    await client.post(f"/jobs/{aborted}/abort")
    first, second = worker(max_burst_jobs=4), worker()
    await first.main()  # 3 tasks, the bounce, one try of the flaky one (ordering aside)
    await second.main()
    # A worker adds its counts to Redis with its heartbeat and as it stops.
    await first.close()
    await second.close()
    # A second app process would read the same numbers: they live in Redis, not in this process.
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    task, note = (("job", "run_sleep_task"),), (("job", "send_notification"),)
    assert got[("arqjobs_jobs_enqueued_total", task)] == 4
    assert got[("arqjobs_jobs_enqueued_total", note)] == 2
    assert got[("arqjobs_jobs_completed_total", task)] == 3
    assert got[("arqjobs_jobs_completed_total", note)] == 1  # the flaky one, in the end
    assert got[("arqjobs_jobs_failed_total", note)] == 1
    assert got[("arqjobs_jobs_retried_total", note)] == 2
    assert got[("arqjobs_jobs_aborted_total", task)] == 1
    assert got[("arqjobs_job_duration_seconds_count", task)] == 3
    assert got[("arqjobs_job_duration_seconds_bucket", (*task, ("le", "+Inf")))] == 3
    assert got[("arqjobs_queue_depth", (("queue", "default"),))] == 0
    assert got[("arqjobs_jobs_in_progress", ())] == 0


async def test_failed_total_counts_every_failure_whatever_ended_the_job(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings, arq_pool: ArqRedis
) -> None:
    await client.post("/send-notification/bounce@example.com")  # its own code: a PermanentFailure
    await enqueue(arq_pool, "times_out", {}, record_ttl_s=60)  # arq's timeout, outside its code
    await enqueue(arq_pool, "no_such_function", {}, record_ttl_s=60)  # arq: a function no worker knows
    unreadable = (await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)).job_id
    await arq_pool.set(f"arq:job:{unreadable}", b"\x80 not a definition")  # arq: one it cannot decode
    w = worker(settings=settings.model_copy(update={"job_kinds": ["tests.integration.slow_kinds"]}))
    await w.main()
    await w.close()  # adds the worker's counts to Redis
    got = samples((await client.get("/metrics")).text)
    failed = {
        dict(labels)["job"]: value for (name, labels), value in got.items() if name == "arqjobs_jobs_failed_total"
    }
    assert {job: n for job, n in failed.items() if n} == {
        "send_notification": 1,
        "times_out": 1,
        "no_such_function": 1,
        "<unknown>": 1,
    }
    completed = [value for (name, _), value in got.items() if name == "arqjobs_jobs_completed_total"]
    assert not any(completed)  # none of them succeeded


async def test_dashboard_data_is_for_admins(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    await client.post("/send-notification/bounce@example.com")
    await client.post("/tasks", json={"type": 0})
    w = worker()
    await w.main()
    await w.close()  # adds the worker's counts to Redis
    assert (await client.get("/dashboard/data")).status_code == 401
    assert (await client.get("/dashboard/data", headers=auth(settings, "alice"))).status_code == 403
    data = (await client.get("/dashboard/data", headers=auth(settings, "ops", admin=True))).json()
    assert [(q["name"], q["depth"], q["scheduled"]) for q in data["queues"]] == [("default", 0, 0), ("reports", 0, 0)]
    assert all(len(q["history"]) == 60 for q in data["queues"])
    assert len(data["throughput"]) == 60
    # The jobs ended in the last minute, or in the one before it when the read came just after a minute's turn.
    recent = [minute for minute in data["throughput"][-2:] if minute["finished"]]
    assert sum(m["finished"] for m in recent) == 2 and sum(m["failed"] for m in recent) == 1
    # Both tries waited less than 0.5 s: p50 and p95 are the bounds of the buckets they fell in.
    waited = [m for m in data["throughput"][-2:] if m["wait_p50_s"] is not None]
    assert waited and all(0 < m["wait_p50_s"] <= m["wait_p95_s"] <= 0.5 for m in waited)
    assert [job["error"]["type"] for job in data["failed"]] == ["PermanentFailure"]


async def test_pages_are_served(client: AsyncClient) -> None:
    for path, marker in (
        ("/", "Generic tasks"),
        ("/dashboard", "Operator's dashboard"),
        ("/static/app.js", "followJob"),
    ):
        response = await client.get(path)
        assert response.status_code == 200 and marker in response.text, path
    assert "http" not in (await client.get("/")).text.split("<body>")[0].replace("http-equiv", "")  # no CDN


async def test_the_api_docs_and_the_favicon_load_with_no_internet(client: AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert len(assets) >= 2, (path, assets)  # the script, the favicon (and Swagger UI's stylesheet)
        for asset in assets:
            assert asset.startswith("/"), (path, asset)  # served here: nothing from a CDN
            assert (await client.get(asset)).status_code == 200, asset
    favicon = await client.get("/favicon.ico")
    assert (favicon.status_code, favicon.headers["content-type"]) == (200, "image/svg+xml")


async def test_a_running_worker_adds_its_counts_with_its_heartbeat(
    client: AsyncClient, worker: Callable[..., Worker]
) -> None:
    w = worker(burst=False, poll_delay=3600)
    running = asyncio.create_task(w.main())
    await client.post("/tasks", json={"type": 0})

    async def completed() -> float:
        got = samples((await client.get("/metrics")).text)
        return got.get(("arqjobs_jobs_completed_total", (("job", "run_sleep_task"),)), 0)

    assert await run_until(completed, "the worker's next heartbeat to add its count") == 1
    running.cancel()


async def test_a_cancelled_flusher_stops_even_when_redis_py_turns_the_cancellation_into_an_error(
    arq_pool: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What hung a web app's shutdown in the suite: the flush was cancelled inside redis-py, an error replaced the
    # CancelledError, and the flush loop took it for an outage and went on.
    in_flush = asyncio.Event()

    async def execute(self: Pipeline, raise_on_error: bool = True) -> list[object]:
        in_flush.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisConnectionError("the connection broke while cancelled") from None
        return []

    monkeypatch.setattr(Pipeline, "execute", execute)
    monkeypatch.setattr(counters, "FLUSH_EVERY_S", 0)
    buffer = counters.MetricsBuffer()
    buffer.add_enqueued("run_sleep_task")
    flusher = asyncio.create_task(buffer.flush_forever(arq_pool))
    await in_flush.wait()
    flusher.cancel()
    done, _ = await asyncio.wait({flusher}, timeout=5)  # a hang guard, not a speed check
    assert flusher in done and flusher.cancelled()
    assert buffer.enqueued == {"run_sleep_task": 1}  # kept for the next flush


async def test_queue_depth_counts_due_jobs_and_scheduled_ones_apart(client: AsyncClient, arq_pool: ArqRedis) -> None:
    # What an autoscaler reads must agree with /health: jobs that could run now. A deferred job (or a retry
    # waiting out its back-off) is counted as scheduled.
    due = [(await client.post("/tasks", json={"type": 0})).json()["task_id"] for _ in range(2)]
    later = (await client.post("/tasks", json={"type": 0})).json()["task_id"]
    await arq_pool.zadd("arq:queue", {later: (time.time() + 3600) * 1000})
    got = samples((await client.get("/metrics")).text)
    default = (("queue", "default"),)
    assert got[("arqjobs_queue_depth", default)] == len(due) == (await client.get("/health")).json()["queued"]
    assert got[("arqjobs_jobs_scheduled", default)] == 1
    assert got[("arqjobs_queue_depth", (("queue", "reports"),))] == 0


async def test_the_openapi_document_bounds_the_listing_limit(client: AsyncClient) -> None:
    parameters = (await client.get("/openapi.json")).json()["paths"]["/jobs"]["get"]["parameters"]
    limit = next(p for p in parameters if p["name"] == "limit")
    assert limit["schema"] == IsPartialDict(type="integer", minimum=1, maximum=100, default=20)
    assert "1 to 100" in limit["description"]


async def test_metrics_an_autoscaler_can_use(
    client: AsyncClient, worker: Callable[..., Worker], arq_pool: ArqRedis
) -> None:
    # The time each job waited in its queue (due to start), per kind; the workers serving each queue.
    await client.post("/tasks", json={"type": 0})
    await client.post("/tasks", json={"type": 0})
    running = asyncio.create_task(worker(burst=False, queues=["default"]).main())

    async def counted() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        got = samples((await client.get("/metrics")).text)
        waited = got.get(("arqjobs_queue_wait_seconds_count", (("job", "run_sleep_task"),)), 0)
        serving = got.get(("arqjobs_workers_serving", (("queue", "default"),)), 0)
        return got if waited == 2 and serving == 1 else None

    got = await run_until(counted, "the waits and the worker's heartbeat in /metrics")
    running.cancel()
    assert got[("arqjobs_workers_serving", (("queue", "reports"),))] == 0
    assert got[("arqjobs_queue_wait_seconds_bucket", (("job", "run_sleep_task"), ("le", "+Inf")))] == 2
    assert got[("arqjobs_oldest_due_job_age_seconds", (("queue", "default"),))] >= 0


async def test_the_dashboard_stream_pushes_changes_and_lists_workers_with_their_check(
    app: Any, worker: Callable[..., Worker], settings: Settings, arq_pool: ArqRedis
) -> None:
    """One stream for the whole dashboard: its data at once, then again as jobs change (no client polling)."""
    w = worker(burst=False, poll_delay=3600)
    running = asyncio.create_task(w.main())
    admin = auth(settings, "ops", admin=True)
    # A real server: the ASGI transport of httpx buffers a streamed body until it ends.
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  # uvicorn's readiness flag
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{config.port}"
    try:
        async with AsyncClient(base_url=base, timeout=30) as http:
            assert (await http.get("/dashboard/events", headers=auth(settings, "alice"))).status_code == 403
            async with http.stream("GET", "/dashboard/events", headers=admin) as stream:
                lines = stream.aiter_lines()
                first = await _next_data(lines)
                assert first["throughput"][-1]["finished"] == 0
                await run_until(lambda: _workers_seen(http, admin), "the worker's first heartbeat")
                await http.post("/tasks", json={"type": 0})
                while (data := await _next_data(lines))["throughput"][-1]["finished"] == 0:
                    pass  # pushed as the job changed (and as its worker's counts were flushed)
                (listed,) = data["workers"]
                assert listed == IsPartialDict(id=w.worker_id, queues=["default", "reports"], check=True)  # type: ignore[attr-defined]
    finally:
        server.should_exit = True
        await serving
        running.cancel()


async def _workers_seen(http: AsyncClient, headers: dict[str, str]) -> bool:
    return bool((await http.get("/dashboard/data", headers=headers)).json()["workers"])


async def _next_data(lines: Any) -> dict[str, Any]:
    async for line in lines:
        if line.startswith("data: "):
            return json.loads(line[6:])
    raise AssertionError("the stream ended")
