"""The Python client (`service.client`): queue by name, by kind or by model; wait for a result by push; batches
all or none; the same quota, idempotency and errors as the HTTP API."""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker
from pydantic import ValidationError
from redis.asyncio.sentinel import SentinelConnectionPool

from service.client import (
    IdempotencyKeyReused,
    JobFailed,
    JobNotFound,
    Jobs,
    JobStateConflict,
    QuotaExceeded,
    RedisUnavailable,
    UnknownKind,
    job_deserializer,
    job_serializer,
)
from service.core import keys
from service.core.status import Status
from service.dev.server import free_port
from service.kinds.tasks import SleepTaskArgs, run_sleep_task
from service.settings import Settings
from tests.conftest import make_settings, run_until

FAILING_KIND = """
from pydantic import BaseModel

from service.kinds import JobContext, PermanentFailure, job_kind


class BreakArgs(BaseModel):
    why: str


@job_kind(args=BreakArgs, description="Fail for good", max_tries=1)
async def break_down(job: JobContext, args: BreakArgs) -> None:
    raise PermanentFailure(args.why)
"""


@pytest.fixture
async def jobs(settings: Settings, arq_pool: ArqRedis) -> AsyncIterator[Jobs]:
    async with Jobs(settings=settings) as client:
        yield client


async def _queued(redis: ArqRedis) -> int:
    return int(await redis.zcard(keys.queue_key(keys.DEFAULT_QUEUE)))


async def test_a_kind_is_named_by_name_by_kind_or_by_its_model(jobs: Jobs, worker: Callable[..., Worker]) -> None:
    by_name = await jobs.enqueue("run_sleep_task", {"type": 0})
    by_kind = await jobs.enqueue(run_sleep_task, SleepTaskArgs(type=0))
    by_model = await jobs.enqueue(SleepTaskArgs(type=0))
    assert await by_name.status() is Status.PENDING
    await worker().main()
    for handle in (by_name, by_kind, by_model):
        assert await handle.result(timeout=10) is True
        view = await handle.view()
        assert (view.name, view.status, view.owner) == ("run_sleep_task", Status.SUCCESS, None)


async def test_result_waits_for_the_end_on_the_jobs_channel(
    jobs: Jobs, worker: Callable[..., Worker], arq_pool: ArqRedis
) -> None:
    handle = await jobs.enqueue("run_sleep_task", {"type": 1})
    waiting = asyncio.create_task(handle.result(timeout=30))
    channel = keys.job_events(handle.id)

    async def subscribers() -> int:
        ((_, count),) = await arq_pool.pubsub_numsub(channel)
        return int(count)

    await run_until(subscribers, "the handle's subscription")
    assert not waiting.done()
    await worker().main()
    assert await waiting is True
    assert await subscribers() == 0  # the subscription ends with the wait


async def test_many_handles_wait_on_one_connection(
    jobs: Jobs, worker: Callable[..., Worker], arq_pool: ArqRedis
) -> None:
    handles = await jobs.enqueue_many([("run_sleep_task", {"type": 0})] * 20)
    waits = [asyncio.create_task(handle.result(timeout=30)) for handle in handles]

    async def all_subscribed() -> bool:
        counts = await arq_pool.pubsub_numsub(*(keys.job_events(handle.id) for handle in handles))
        return all(count == 1 for _, count in counts)

    await run_until(all_subscribed, "every handle's subscription")
    assert len(await arq_pool.client_list(_type="pubsub")) == 1  # one connection carries them all
    await worker().main()
    assert await asyncio.gather(*waits) == [True] * 20


async def test_a_failed_or_revoked_job_raises_job_failed(
    tmp_path: Path, settings: Settings, kind_module: Callable[[str, str], str], worker: Callable[..., Worker]
) -> None:
    team = make_settings(tmp_path, settings.redis_url, job_kinds=[kind_module("breaking", FAILING_KIND)])
    async with Jobs(settings=team) as jobs:
        failing = await jobs.enqueue("break_down", {"why": "the disk is full"})
        await worker(settings=team).main()
        with pytest.raises(JobFailed) as failed:
            await failing.result(timeout=10)
        assert failed.value.status is Status.FAILURE
        assert failed.value.view.error is not None
        assert failed.value.view.error.message == "the disk is full"

        later = await jobs.enqueue("run_sleep_task", {"type": 0}, delay_s=3600)
        assert await later.abort() is Status.REVOKED
        with pytest.raises(JobFailed) as revoked:
            await later.result(timeout=10)
        assert revoked.value.status is Status.REVOKED
        with pytest.raises(JobStateConflict):
            await later.abort()
        again = await jobs.retry(later.id)
        assert again.id != later.id
        assert await again.status() is Status.PENDING


async def test_result_times_out_with_timeout_error(jobs: Jobs) -> None:
    handle = await jobs.enqueue("run_sleep_task", {"type": 0})  # no worker runs
    with pytest.raises(TimeoutError):
        await handle.result(timeout=0.05)


async def test_bad_args_and_unknown_kinds_queue_nothing(jobs: Jobs, arq_pool: ArqRedis) -> None:
    with pytest.raises(ValidationError):
        await jobs.enqueue("run_sleep_task", {"type": 9})
    with pytest.raises(ValidationError):
        await jobs.enqueue_many([("run_sleep_task", {"type": 0}), ("run_sleep_task", {"type": "1"})])
    with pytest.raises(UnknownKind, match="no_such_kind"):
        await jobs.enqueue("no_such_kind", {})
    with pytest.raises(UnknownKind, match="queued by the service"):
        await jobs.enqueue("webhook", {"job_id": "x", "url": "https://example.com"})
    with pytest.raises(ValueError, match="owner"):
        await jobs.enqueue("generate_report", {"rows": 10})
    with pytest.raises(ValueError, match="not both"):
        await jobs.enqueue("run_sleep_task", {"type": 0}, delay_s=1, run_at=datetime.now(UTC))
    assert await _queued(arq_pool) == 0
    with pytest.raises(JobNotFound):
        await jobs.job("0" * 32).status()


async def test_a_batch_is_queued_in_order_and_counted_whole_against_the_quota(
    tmp_path: Path, settings: Settings, arq_pool: ArqRedis
) -> None:
    limited = make_settings(tmp_path, settings.redis_url, max_active_jobs_per_user=3)
    async with Jobs(settings=limited) as jobs:
        handles = await jobs.enqueue_many([("run_sleep_task", {"type": n}) for n in range(2)], owner="ada")
        views = [await handle.view() for handle in handles]
        assert [view.owner for view in views] == ["ada", "ada"]
        with pytest.raises(QuotaExceeded):
            await jobs.enqueue_many([("run_sleep_task", {"type": 0})] * 2, owner="ada")
        assert await _queued(arq_pool) == 2  # nothing of the refused batch
        await jobs.enqueue("run_sleep_task", {"type": 0}, owner="ada")  # the third fits


async def test_an_idempotency_key_returns_the_first_calls_jobs(jobs: Jobs, arq_pool: ArqRedis) -> None:
    first = await jobs.enqueue_many([SleepTaskArgs(type=0), SleepTaskArgs(type=1)], idempotency_key="k-1")
    repeat = await jobs.enqueue_many([SleepTaskArgs(type=0), SleepTaskArgs(type=1)], idempotency_key="k-1")
    assert [h.id for h in repeat] == [h.id for h in first]
    with pytest.raises(IdempotencyKeyReused):
        await jobs.enqueue("run_sleep_task", {"type": 2}, idempotency_key="k-1")
    assert await _queued(arq_pool) == 2


async def test_redis_unreachable_is_one_exception(settings: Settings, tmp_path: Path) -> None:
    nowhere = make_settings(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    async with Jobs(settings=nowhere) as jobs:
        with pytest.raises(RedisUnavailable):
            await jobs.enqueue("run_sleep_task", {"type": 0})
    assert issubclass(RedisUnavailable, ConnectionError)


async def test_plain_arq_code_queues_a_job_the_client_follows(
    jobs: Jobs, settings: Settings, worker: Callable[..., Worker]
) -> None:
    pool = await create_pool(
        RedisSettings.from_dsn(settings.redis_url), job_serializer=job_serializer, job_deserializer=job_deserializer
    )
    try:
        job = await pool.enqueue_job("run_sleep_task", type=0)
    finally:
        await pool.aclose()
    assert job is not None
    await worker().main()
    handle = jobs.job(job.job_id)
    assert await handle.result(timeout=10) is True
    assert (await handle.view()).owner is None


async def test_through_sentinel_the_client_asks_the_sentinels(tmp_path: Path) -> None:
    """REDIS_SENTINELS makes the client's pool one that asks the Sentinels for the primary (the same pool the web
    app uses; tests/e2e/test_sentinel.py fails one over): with none answering, that is `RedisUnavailable`."""
    sentinel = make_settings(tmp_path, "redis://:secret@ignored:1/0", redis_sentinels=[f"127.0.0.1:{free_port()}"])
    async with Jobs(settings=sentinel) as jobs:
        assert isinstance(jobs.redis.connection_pool, SentinelConnectionPool)
        with pytest.raises(RedisUnavailable):
            await jobs.enqueue("run_sleep_task", {"type": 0})
