"""The Lua scripts, each against the real server: the one NOSCRIPT path (a server that forgot them), the quota race
of the enqueue script, the take script's queue priority and next due time, an abort around a claim, and jobs that
plain arq code queued (no record of ours)."""

import asyncio
import time

from arq.connections import ArqRedis

from service.core import keys
from service.core.enqueue import ENQUEUE, NewJob, abort, enqueue, enqueue_many, prepare
from service.core.exceptions import QuotaExceeded
from service.core.queues import read_queues
from service.core.reads import read_job
from service.core.record import Field
from service.core.scripts import SCRIPTS, run_pipeline
from service.core.status import Status
from service.engine.take import take


async def claim(redis: ArqRedis, queues: list[str], free: int) -> tuple[list[str], int | None]:
    claimed, next_due = await take(
        redis, [keys.queue_key(q) for q in queues], count=10, free=free, claim_ms=60_000, short_claim_ms=10_000,
        worker_id="w-test",
    )  # fmt: skip
    return [job.job_id for job in claimed], next_due


def test_every_script_has_a_name_and_one_sha() -> None:
    assert set(SCRIPTS) == {"enqueue", "abort", "read_job", "read_task_state", "take", "sample_depth", "read_queues"}
    assert len({script.sha for script in SCRIPTS.values()}) == len(SCRIPTS)


async def test_a_server_that_forgot_the_scripts_runs_them_again(arq_pool: ArqRedis) -> None:
    first = (await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)).job_id
    await arq_pool.script_flush()
    # One call (EVALSHA, NOSCRIPT, load, EVALSHA), a pipeline of reads sent again, and a transaction (EVAL).
    second = (await enqueue(arq_pool, "run_sleep_task", {"type": 1}, record_ttl_s=60)).job_id
    await arq_pool.script_flush()
    assert [v.id for v in [await read_job(arq_pool, first), await read_job(arq_pool, second)]] == [first, second]
    await arq_pool.script_flush()
    job = prepare("run_sleep_task", {"type": 2}, record_ttl_s=60)
    async with arq_pool.pipeline(transaction=True) as tr:
        ENQUEUE.queue_in_transaction(tr, job.keys, job.args)
        tr.hset(keys.job_record(job.job_id), "note", "same transaction")
        (outcome, ids), _ = await tr.execute()
    assert (outcome, ids.decode()) == (1, job.job_id)
    await arq_pool.script_flush()
    replies = await run_pipeline(arq_pool, lambda pipe: ENQUEUE.queue(pipe, job.keys, job.args), [ENQUEUE])
    assert replies[0][0] == 1  # sent again after its NOSCRIPT: the same id, so still one job
    assert await arq_pool.zcard(keys.queue_key(keys.DEFAULT_QUEUE)) == 3


async def test_concurrent_batches_never_pass_the_quota_together(arq_pool: ArqRedis) -> None:
    batch = [NewJob("run_sleep_task", {"type": 0})] * 2

    async def one() -> bool:
        try:
            await enqueue_many(arq_pool, batch, record_ttl_s=60, owner="ada", max_active=5)
        except QuotaExceeded:
            return False
        return True

    outcomes = await asyncio.gather(*(one() for _ in range(10)))
    assert outcomes.count(True) == 2  # 2 x 2 jobs fit under 5; a third batch would make 6
    assert await arq_pool.zcard(keys.active_jobs("ada")) == 4
    assert await arq_pool.zcard(keys.queue_key(keys.DEFAULT_QUEUE)) == 4


async def test_take_serves_earlier_queues_first_and_says_when_the_next_job_is_due(arq_pool: ArqRedis) -> None:
    later_ms = int((time.time() + 3600) * 1000)
    low = (await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60, queue="bulk")).job_id
    high = (await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60, queue="urgent")).job_id
    await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60, queue="urgent", run_at_ms=later_ms)
    assert await claim(arq_pool, ["urgent", "bulk"], free=1) == ([high], None)  # full: no next due time needed
    assert await claim(arq_pool, ["urgent", "bulk"], free=5) == ([low], later_ms)  # the claimed one is left alone
    assert await claim(arq_pool, ["urgent", "bulk"], free=5) == ([], later_ms)


async def test_an_abort_before_the_claim_wins_and_one_after_it_is_the_workers(arq_pool: ArqRedis) -> None:
    queued = (await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)).job_id
    assert await abort(arq_pool, queued, "run_sleep_task", {"type": 0}, 0, 60) == "revoked"
    assert await claim(arq_pool, ["default"], free=5) == ([], None)  # never claimed
    claimed = (await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)).job_id
    assert (await claim(arq_pool, ["default"], free=5))[0] == [claimed]
    assert await abort(arq_pool, claimed, "run_sleep_task", {"type": 0}, 0, 60) == "running"
    abort_requested = await arq_pool.hget(keys.job_record(claimed), Field.ABORT_REQUESTED)  # type: ignore[misc]
    assert abort_requested is not None  # the worker reads it as the job starts
    assert await abort(arq_pool, "f" * 32, "run_sleep_task", {}, 0, 60) == "missing"


async def test_a_job_queued_by_plain_arq_code_is_read_and_taken(arq_pool: ArqRedis) -> None:
    job = await arq_pool.enqueue_job("run_sleep_task", type=0)
    assert job is not None
    view = await read_job(arq_pool, job.job_id)
    assert (view.name, view.status, view.owner, view.queue) == ("run_sleep_task", Status.PENDING, None, "default")
    claimed, _ = await take(
        arq_pool, [keys.queue_key("default")], count=10, free=5, claim_ms=60_000, short_claim_ms=10_000,
        worker_id="w-test",
    )  # fmt: skip
    assert [(c.job_id, c.recorded) for c in claimed] == [(job.job_id, False)]  # arq's long claim: no record to renew
    assert await arq_pool.pttl(f"arq:in-progress:{job.job_id}") > 10_000
    assert not await arq_pool.exists(keys.job_record(job.job_id))  # nor does the take script make one


async def test_a_queue_counts_its_running_jobs_apart_from_the_waiting_ones(arq_pool: ArqRedis) -> None:
    first = (await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)).job_id
    await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)
    await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60, run_at_ms=int((time.time() + 60) * 1000))
    await arq_pool.zadd(keys.queue_key("default"), {first: int((time.time() - 30) * 1000)})  # due 30 s ago
    assert (await claim(arq_pool, ["default"], free=1))[0] == [first]  # running now
    ((default, reports), _) = await read_queues(arq_pool, ["default", "reports"])
    assert (default.waiting, default.running, default.due, default.scheduled) == (1, 1, 2, 1)
    assert 0 <= default.oldest_due_s < 20  # the waiting one's, not the running one's (due 30 s ago)
    assert (reports.waiting, reports.running, reports.scheduled, reports.oldest_due_s) == (0, 0, 0, 0.0)
