"""Time and place: jobs scheduled for later, recurring kinds, and queues served in order of priority."""

import asyncio
import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from arq.worker import Worker
from dirty_equals import IsPartialDict
from httpx import AsyncClient

from service.core import keys
from service.settings import Settings
from tests.conftest import make_settings, run_until
from tests.integration.helpers import auth


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def view(client: AsyncClient, job_id: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    return dict((await client.get(f"/jobs/{job_id}", headers=headers or {})).json())


async def test_a_delayed_job_waits_for_its_time_and_starts_at_it(
    client: AsyncClient, worker: Callable[..., Worker]
) -> None:
    # poll_delay of an hour: only the worker's own wait for the next due job can start it.
    running = asyncio.create_task(worker(burst=False, poll_delay=3600).main())
    response = await client.post("/jobs", json={"name": "run_sleep_task", "args": {"type": 0}, "delay_s": 0.5})
    assert response.status_code == 202
    job_id = response.json()["task_id"]
    queued = await view(client, job_id)
    assert queued == IsPartialDict(status="PENDING", started_at=None, queue="default")
    scheduled_for = parse(str(queued["scheduled_for"]))
    assert timedelta(0) < scheduled_for - parse(str(queued["enqueued_at"])) <= timedelta(seconds=0.6)

    async def succeeded() -> dict[str, object] | None:
        found = await view(client, job_id)
        return found if found["status"] == "SUCCESS" else None

    done = await run_until(succeeded, "the delayed job")
    assert parse(str(done["started_at"])) >= scheduled_for  # never early
    running.cancel()


async def test_a_run_at_in_the_past_runs_at_once(client: AsyncClient, worker: Callable[..., Worker]) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    job_id = (await client.post("/jobs", json={"name": "run_sleep_task", "args": {"type": 0}, "run_at": past})).json()[
        "task_id"
    ]
    await worker().main()
    assert (await view(client, job_id))["status"] == "SUCCESS"


@pytest.mark.parametrize(
    "when",
    [
        {"delay_s": 1, "run_at": "2030-01-01T00:00:00+00:00"},  # both
        {"delay_s": -1},
        {"delay_s": "5"},
        {"delay_s": True},
        {"delay_s": 400 * 86400},  # over a year
        {"run_at": "2030-01-01T00:00:00"},  # no offset
        {"run_at": 1_900_000_000},  # a number, not an ISO time
        {"run_at": (datetime.now(UTC) + timedelta(days=400)).isoformat()},  # over a year ahead
        {"run_at": "tomorrow"},
    ],
)
async def test_bad_times_are_422_and_queue_nothing(
    client: AsyncClient, arq_pool: ArqRedis, when: dict[str, object]
) -> None:
    body = {"name": "run_sleep_task", "args": {"type": 0}, **when}
    response = await client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    assert await arq_pool.zcard("arq:queue") == 0


async def test_nan_as_a_delay_is_422(client: AsyncClient, arq_pool: ArqRedis) -> None:
    body = b'{"name": "run_sleep_task", "args": {"type": 0}, "delay_s": NaN}'
    response = await client.post("/jobs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert await arq_pool.zcard("arq:queue") == 0


async def test_a_job_scheduled_a_week_ahead_lives_past_its_time(client: AsyncClient, arq_pool: ArqRedis) -> None:
    week = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    job_id = (await client.post("/jobs", json={"name": "run_sleep_task", "args": {"type": 0}, "run_at": week})).json()[
        "task_id"
    ]
    # arq would expire it a day after its enqueue; its keys live until a day after its time.
    eight_days_ms = 8 * 86400 * 1000
    assert await arq_pool.pttl(job_key_prefix + job_id) > eight_days_ms - 60_000
    assert await arq_pool.pttl(keys.job_record(job_id)) > eight_days_ms
    assert (await view(client, job_id))["status"] == "PENDING"


async def test_aborting_a_scheduled_job_revokes_it_and_it_never_runs(
    client: AsyncClient, worker: Callable[..., Worker]
) -> None:
    job_id = (await client.post("/jobs", json={"name": "run_sleep_task", "args": {"type": 0}, "delay_s": 3600})).json()[
        "task_id"
    ]
    assert (await client.post(f"/jobs/{job_id}/abort")).json() == {"id": job_id, "status": "REVOKED"}
    await worker().main()
    assert await view(client, job_id) == IsPartialDict(status="REVOKED", started_at=None)


async def test_the_quota_counts_scheduled_jobs(tmp_path: Path, settings: Settings, client: AsyncClient) -> None:
    headers = auth(settings, "quota-user")
    bodies = [{"name": "run_sleep_task", "args": {"type": 0}, "delay_s": 3600}] * settings.max_active_jobs_per_user
    for body in bodies:
        assert (await client.post("/jobs", json=body, headers=headers)).status_code == 202
    over = await client.post("/tasks", json={"type": 0}, headers=headers)
    assert over.status_code == 429


# Queues ----------------------------------------------------------------------------------------------------------


async def test_a_worker_takes_only_the_queues_it_serves_earlier_ones_first(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    alice = auth(settings, "alice")
    task = (await client.post("/tasks", json={"type": 0})).json()["task_id"]
    report = (await client.post("/reports", json={"rows": 2}, headers=alice)).json()["task_id"]
    assert (await view(client, report, alice))["queue"] == "reports"
    assert (await client.get("/health")).json()["queues"] == {"default": 1, "reports": 1}

    await worker(queues=["default"]).main()  # the general worker leaves the report alone
    assert (await view(client, task))["status"] == "SUCCESS"
    assert (await view(client, report, alice))["status"] == "PENDING"
    await worker(queues=["reports"]).main()
    assert (await view(client, report, alice))["status"] == "SUCCESS"

    # One slot, both queues due: the earlier queue's job is taken first, although it was queued last.
    # (Not a burst worker: arq's burst mode ends once the worker's first queue is empty.)
    task = (await client.post("/tasks", json={"type": 0})).json()["task_id"]
    report = (await client.post("/reports", json={"rows": 2}, headers=alice)).json()["task_id"]
    running = asyncio.create_task(worker(queues=["reports", "default"], max_jobs=1, burst=False).main())

    async def both_done() -> bool:
        views = [await view(client, report, alice), await view(client, task)]
        return all(v["status"] == "SUCCESS" for v in views)

    await run_until(both_done, "both jobs")
    running.cancel()
    first, second = await view(client, report, alice), await view(client, task)
    assert parse(str(first["finished_at"])) <= parse(str(second["started_at"]))


async def test_abort_retry_listing_and_the_stream_work_on_every_queue(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings, arq_pool: ArqRedis
) -> None:
    alice = auth(settings, "alice")
    report = (await client.post("/reports", json={"rows": 2}, headers=alice)).json()["task_id"]
    assert (await client.post(f"/jobs/{report}/abort", headers=alice)).json()["status"] == "REVOKED"
    again = (await client.post(f"/jobs/{report}/retry", headers=alice)).json()["task_id"]
    seen: list[str] = []

    async def follow() -> None:
        async with client.stream("GET", f"/jobs/{again}/events", headers=alice) as response:
            seen.extend([line async for line in response.aiter_lines() if line.startswith("data:")])

    async def subscribed() -> bool:
        channels: list[tuple[bytes, int]] = await arq_pool.pubsub_numsub(keys.job_events(again))
        return channels[0][1] == 1

    stream = asyncio.create_task(follow())
    await run_until(subscribed, "the stream's subscription")
    await worker().main()
    await asyncio.wait_for(stream, 20)  # it ends by itself after SUCCESS; the bound is a hang guard
    assert '"status":"PENDING"' in seen[0] and '"status":"SUCCESS"' in seen[-1]
    assert await view(client, again, alice) == IsPartialDict(status="SUCCESS", queue="reports", owner="alice")
    listed = (await client.get("/jobs", headers=alice)).json()["items"]
    assert [(j["id"], j["status"]) for j in listed] == [(again, "SUCCESS"), (report, "REVOKED")]


# Recurring kinds ------------------------------------------------------------------------------------------------

TICKING_KIND = """
from pydantic import BaseModel

from service.kinds import JobContext, job_kind


class NoArgs(BaseModel):
    pass


@job_kind(args=NoArgs, description="Every second, one line", schedule="* * * * * *")
async def tick(job: JobContext, args: NoArgs) -> None:
    await job.append_once(job.settings.data_dir / "ticks.log", f"tick [{job.id}]\\n", "tick")
"""


async def test_a_recurring_kind_runs_once_per_tick_on_two_workers(
    tmp_path: Path,
    settings: Settings,
    worker: Callable[..., Worker],
    kind_module: Callable[[str, str], str],
    arq_pool: ArqRedis,
) -> None:
    ticking = make_settings(tmp_path, settings.redis_url, job_kinds=[kind_module("ticking", TICKING_KIND)])
    workers = [asyncio.create_task(worker(burst=False, poll_delay=0.05, settings=ticking).main()) for _ in range(2)]
    log = ticking.data_dir / "ticks.log"

    async def three_ticks() -> bool:
        return log.exists() and len(log.read_text().splitlines()) >= 3

    await run_until(three_ticks, "three ticks")
    for running in workers:
        running.cancel()
    await asyncio.wait(workers)
    lines = log.read_text().splitlines()
    ids = [line.split("[", 1)[1].rstrip("]") for line in lines]
    assert len(ids) == len(set(ids))  # one run per tick, whichever worker queued it
    assert all(job_id.startswith("tick:") for job_id in ids)
    # Its runs are ordinary jobs: listed, with their kind's name.
    listed = {member.decode() for member in await arq_pool.zrange(keys.ALL_JOBS_INDEX, 0, -1)}
    assert set(ids) <= listed


async def test_a_stopping_worker_does_not_spin_while_a_scheduled_job_falls_due(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    # On SIGTERM (with a grace period) arq stops the worker taking jobs while its running ones finish. The worker
    # had learned when a scheduled job is due; once that time passed, every wait would have been zero: a busy loop
    # for the whole grace period.
    w = worker(burst=False, poll_delay=3600, settings=settings.model_copy(update={"sleep_scale": 0.05}))
    soon = (await client.post("/jobs", json={"name": "run_sleep_task", "args": {"type": 0}, "delay_s": 0.2})).json()
    busy = (await client.post("/tasks", json={"type": 1})).json()["task_id"]  # 0.5 s
    looks = 0
    poll = w._poll_iteration

    async def counted() -> None:
        nonlocal looks
        looks += 1
        await poll()

    w._poll_iteration = counted  # type: ignore[method-assign]
    running = asyncio.create_task(w.main())

    async def status(job_id: str, wanted: str) -> bool:
        return (await view(client, job_id))["status"] == wanted

    await run_until(functools.partial(status, busy, "STARTED"), "the busy job's start")
    w.allow_pick_jobs = False  # what arq's SIGTERM handler does while running jobs finish
    looks = 0
    await run_until(functools.partial(status, busy, "SUCCESS"), "the busy job's end")
    running.cancel()
    assert (await view(client, soon["task_id"]))["status"] == "PENDING"  # left for another worker
    assert looks < 50, looks  # a few wake-ups (the job's end), not a spin past the scheduled job's time
