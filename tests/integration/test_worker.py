"""The worker as WorkerSettings builds it: wake-ups, heartbeats, logs."""

import asyncio
from collections.abc import Callable

from arq.worker import Worker
from httpx import AsyncClient

from tests.conftest import run_until


async def test_an_idle_worker_wakes_for_a_new_job(client: AsyncClient, worker: Callable[..., Worker]) -> None:
    # With an hour between polls, only the pub/sub wake-up sent with the enqueue can start this job.
    w = worker(burst=False, poll_delay=3600)
    running = asyncio.create_task(w.main())
    await run_until(lambda: client.get("/health"), "the app")  # let the worker reach its first wait

    async def succeeded(task_id: str) -> bool:
        return (await client.get(f"/tasks/{task_id}")).json()["task_status"] == "SUCCESS"

    for _ in range(3):
        task_id = (await client.post("/tasks", json={"type": 0})).json()["task_id"]
        await run_until(lambda: succeeded(task_id), "the woken worker to run the job")  # noqa: B023
    running.cancel()


async def test_health_counts_a_running_worker(client: AsyncClient, worker: Callable[..., Worker]) -> None:
    assert (await client.get("/health")).json()["workers"] == 0
    w = worker(burst=False)
    running = asyncio.create_task(w.main())

    async def one_worker() -> bool:
        return (await client.get("/health")).json()["workers"] == 1

    await run_until(one_worker, "the worker's heartbeat")
    running.cancel()
    await w.close()
    assert (await client.get("/health")).json()["workers"] == 0
