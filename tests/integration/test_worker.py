"""The worker as WorkerSettings builds it: wake-ups, heartbeats, logs."""

import asyncio
import functools
import logging
import time
from collections.abc import Callable

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from httpx import AsyncClient
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

from service.core import keys
from service.core.enqueue import enqueue
from service.engine import MAX_JOBS, wakeup
from service.engine.housekeeping import trim_job_index
from service.engine.runtime import ENGINE
from service.settings import Settings
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
    done, _ = await asyncio.wait({running}, timeout=10)  # a hang guard: its loop ends before its pool closes
    assert running in done
    await w.close()
    assert (await client.get("/health")).json()["workers"] == 0


async def test_a_full_worker_takes_a_new_job_as_soon_as_a_slot_frees(
    client: AsyncClient, worker: Callable[..., Worker], arq_pool: ArqRedis, settings: Settings
) -> None:
    # Queued before the worker starts, in this order: an instant job, MAX_JOBS - 1 jobs of 3 s, and one more
    # instant job for which the worker has no slot. arq does not read the queue while it runs max_jobs jobs, and
    # the next poll is an hour away: only the wake-up from the first job's end can start the last one.
    async def queue(task_type: int) -> str:
        return (await enqueue(arq_pool, "run_sleep_task", {"type": task_type}, record_ttl_s=60)).job_id

    first = await queue(0)
    slow = [await queue(3) for _ in range(MAX_JOBS - 1)]
    waiting = await queue(0)
    now_ms = time.time() * 1000
    await arq_pool.zadd("arq:queue", {first: now_ms - 3, **dict.fromkeys(slow, now_ms - 2), waiting: now_ms - 1})
    w = worker(burst=False, poll_delay=3600, settings=settings.model_copy(update={"sleep_scale": 0.1}))
    running = asyncio.create_task(w.main())
    await run_until(functools.partial(_succeeded, client, waiting), "the job that waited for a free slot")
    # It ran in the slot the first job freed, while every slow job still held its own.
    assert await arq_pool.exists(*(in_progress_key_prefix + job_id for job_id in slow)) == MAX_JOBS - 1
    running.cancel()


async def _succeeded(client: AsyncClient, task_id: str) -> bool:
    return (await client.get(f"/tasks/{task_id}")).json()["task_status"] == "SUCCESS"


async def test_the_cron_trims_the_all_jobs_index(
    arq_pool: ArqRedis, settings: Settings, worker: Callable[..., Worker]
) -> None:
    await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=settings.result_ttl)
    long_gone = (time.time() - 3 * 86400) * 1_000_000  # an entry older than any record lives
    await arq_pool.zadd(keys.ALL_JOBS_INDEX, {"expired-job": long_gone})
    await arq_pool.zadd(keys.IDS_INDEX, {"expired-job": 0})
    await arq_pool.zadd(keys.kind_index("run_sleep_task"), {"expired-job": long_gone})
    assert await trim_job_index({"redis": arq_pool}) == 1
    assert await arq_pool.zcard(keys.ALL_JOBS_INDEX) == 1
    assert await arq_pool.zscore(keys.IDS_INDEX, "expired-job") is None
    # A worker trims the indexes of the kinds it runs.
    assert await arq_pool.zcard(keys.kind_index("run_sleep_task")) == 2
    w = worker()
    await trim_job_index({"redis": arq_pool, ENGINE: w})
    assert await arq_pool.zcard(keys.kind_index("run_sleep_task")) == 1


async def test_a_worker_takes_only_due_jobs_nobody_has_claimed(
    client: AsyncClient, worker: Callable[..., Worker], arq_pool: ArqRedis, settings: Settings
) -> None:
    # The take script (service.engine.take) keeps arq's rules: a claimed job and a deferred one are left alone.
    claimed = (await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)).job_id
    await arq_pool.psetex(in_progress_key_prefix + claimed, 60_000, b"1")  # as another worker's claim
    later = (await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)).job_id
    await arq_pool.zadd("arq:queue", {later: (time.time() + 3600) * 1000})  # deferred by an hour
    # Not a burst worker: it would wait for the queue to empty. No cron jobs: one due at a 5-minute mark would queue.
    w = worker(burst=False, cron_jobs=[])
    running = asyncio.create_task(w.main())
    free = [(await client.post("/tasks", json={"type": 0})).json()["task_id"] for _ in range(3)]
    for task_id in free:
        await run_until(functools.partial(_succeeded, client, task_id), "the jobs it may take")
    # Every look at the queue since has seen the other two: the worker has run 3 jobs, and they are still queued.
    assert w.jobs_complete == 3
    assert (await client.get(f"/tasks/{claimed}")).json()["task_status"] == "PENDING"
    assert (await client.get(f"/tasks/{later}")).json()["task_status"] == "PENDING"
    assert await arq_pool.zcard("arq:queue") == 2
    running.cancel()


async def test_the_wakeup_listener_stops_when_told_and_when_cancelled_even_if_closing_fails(
    arq_pool: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cancelled listener closes its subscription; an error while closing replaces the CancelledError, and the
    # listener used to treat it as an outage and subscribe again, so a worker's shutdown waited for ever.
    async def failing_close(self: PubSub) -> None:
        raise RedisConnectionError("the connection broke while closing")

    monkeypatch.setattr(PubSub, "aclose", failing_close)

    async def subscribed() -> bool:
        channels: list[tuple[bytes, int]] = await arq_pool.pubsub_numsub(keys.WAKEUP_CHANNEL)
        return channels[0][1] == 1

    for how in ("stop", "cancel"):
        stop = asyncio.Event()
        listener = asyncio.create_task(wakeup.listen(arq_pool, stop, lambda: None, lambda _: None))
        await run_until(subscribed, "the listener's subscription")
        stop.set() if how == "stop" else listener.cancel()
        done, _ = await asyncio.wait({listener}, timeout=10)  # a hang guard, not a speed check
        assert listener in done, how
        assert listener.cancelled() == (how == "cancel")
        await arq_pool.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # what the failed close left open


async def test_health_counts_the_jobs_due_not_the_deferred_ones(
    client: AsyncClient, arq_pool: ArqRedis, settings: Settings
) -> None:
    await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)
    later = (await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)).job_id
    await arq_pool.zadd("arq:queue", {later: (time.time() + 3600) * 1000})  # deferred, as arq queues a cron job
    assert (await client.get("/health")).json() == {
        "status": "ok",
        "redis": "ok",
        "workers": 0,
        "queued": 1,
        "queues": {"default": 1, "reports": 0},
    }


async def test_a_job_is_claimed_and_its_start_recorded_in_one_script(
    client: AsyncClient, worker: Callable[..., Worker], arq_pool: ArqRedis
) -> None:
    # One EVALSHA claims every due job and records each start; arq's own claim (WATCH/MULTI per job) never runs, and
    # arq's run_job counts the try itself (INCRBY), as the attempt recorded by the script expects.
    await arq_pool.config_resetstat()
    job_ids = [(await client.post("/tasks", json={"type": 0})).json()["task_id"] for _ in range(3)]
    await worker().main()
    for job_id in job_ids:
        view = (await client.get(f"/jobs/{job_id}")).json()
        assert view["status"] == "SUCCESS" and view["attempt"] == 1 and view["worker"]
    stats = await arq_pool.info("commandstats")
    assert stats.get("cmdstat_watch", {}).get("calls", 0) == 0
    assert stats["cmdstat_incrby"]["calls"] == 3


async def test_a_job_is_logged_once_as_json_without_its_arguments(
    client: AsyncClient, worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    # arq's own start and success lines carry the job's arguments (an e-mail address here); its startup lines stay.
    caplog.set_level(logging.INFO)
    response = await client.post("/send-notification/someone@example.com")
    job_id = response.json()["task_id"]
    await worker().main()
    lines = [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith(("arq", "service.engine"))]
    assert [message for name, message in lines if job_id in message] == []
    assert not any("someone@example.com" in message for _, message in lines)
    ended = [r for r in caplog.records if r.getMessage() == "job ended" and getattr(r, "job_id", None) == job_id]
    assert len(ended) == 1 and ended[0].outcome == "success"  # type: ignore[attr-defined]
    assert any(name == "arq.worker" and message.startswith("Starting worker") for name, message in lines)


async def test_a_worker_hears_aborts_before_it_takes_its_first_job(
    arq_pool: ArqRedis, worker: Callable[..., Worker]
) -> None:
    # The startup hook returns only once the abort channel is subscribed: a job claimed by the first poll could
    # otherwise be aborted (and its abort published) before anyone listens, and it would run to its end.
    w = worker(burst=False)
    seen: list[list[tuple[bytes, int]]] = []

    async def look(ctx: dict[str, object]) -> None:
        seen.append(await arq_pool.pubsub_numsub(keys.ABORT_CHANNEL, keys.WAKEUP_CHANNEL))
        raise asyncio.CancelledError  # ends the worker's main() here: the check is all this test wants

    w._hooks["startup"] = look  # type: ignore[attr-defined]  # the fixture's worker is a ServiceWorker
    with pytest.raises(asyncio.CancelledError):
        await w.main()
    assert seen == [[(keys.ABORT_CHANNEL.encode(), 1), (keys.WAKEUP_CHANNEL.encode(), 1)]]
