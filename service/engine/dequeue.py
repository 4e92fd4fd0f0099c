"""How a worker takes jobs off arq's queue: every due job it has room for, read, claimed and started in one round
trip.

Each poll of arq's worker (`Worker._poll_iteration`) reads up to `queue_read_limit` due ids from the queue, then
claims them one at a time (`Worker.start_jobs`), each with WATCH, EXISTS, ZSCORE and MULTI/PSETEX/EXEC: four
round trips and six commands per job, in sequence, before the next job may start. It also reads, and tries to
claim, the jobs it is running itself: a job stays in the queue until it ends. Each job then costs two more round
trips before its code runs: arq's start transaction (`Worker.run_job` reads the job and counts the try) and our
start record (`runtime._record_start`). On one worker with instant jobs that was the ceiling of the drain rate and
most of the pickup latency.

`poll_iteration` below keeps arq's semantics (due jobs in queue order; a job claimed by any worker is left
alone; the claim is arq's in-progress key; slots are arq's counter and semaphore; burst limits, heartbeats as arq
does them) and does all of that in one atomic script (`TAKE_SCRIPT`). arq's start transaction is then answered
from the script's replies (`_AnsweredPipeline`) instead of being sent again, and the job's wrapper finds its start
already recorded (`Started`).
"""

import contextvars
import weakref
from dataclasses import dataclass
from typing import Any

import arq.worker
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms
from redis.asyncio.client import Pipeline

from service.core import keys
from service.engine import aborts
from service.engine.claims import CLAIM_TTL_S
from service.engine.wakeup import wake_local

# Workers whose last look at the queue filled every free slot.
_saturated: "weakref.WeakSet[arq.worker.Worker]" = weakref.WeakSet()
# Pools whose start transactions are answered from the take script (`_answer_start_transactions`).
_answering: "weakref.WeakSet[ArqRedis]" = weakref.WeakSet()

# arq's start transaction in `Worker.run_job` (arq 0.26-0.28, allow_abort_jobs off) keeps the retry counter this
# long (s).
ARQ_RETRY_KEY_TTL_S = 88400
REPLIES_PER_JOB = 6

# Read due ids in queue order and claim each one nobody has claimed, up to the free slots. With ARGV[7] = 1, it
# also runs arq's start transaction for each (the job's definition, its try counted) and, for jobs queued by this
# service (those with a record), records and announces the start, with the short claim the claim keeper renews
# (`claims`) instead of arq's long one. Returns six values per claimed job: id, queue score, definition, try,
# whether the start was recorded, whether an abort was asked for before it. The other keys are named from ARGV
# (arq's and our prefixes), not declared in KEYS: the script is for one server, as arq is (no Redis Cluster).
# KEYS: queue. ARGV: now ms, claim lifetime ms, read offset, read count, free slots, short claim ms, start (0/1),
# worker id, then the prefixes: in-progress, job, retry, record, events channel; the retry counter's lifetime s.
TAKE_SCRIPT = """
local now, claim_ms, short_claim_ms, start, worker = ARGV[1], ARGV[2], ARGV[6], ARGV[7] == '1', ARGV[8]
local claim_prefix, job_prefix, retry_prefix, record_prefix, events_prefix = ARGV[9], ARGV[10], ARGV[11], ARGV[12],
  ARGV[13]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', ARGV[3], ARGV[4])
local free, taken = tonumber(ARGV[5]), {}
for i = 1, #due, 2 do
  if free == 0 then break end
  local id = due[i]
  local claim = claim_prefix .. id
  if redis.call('EXISTS', claim) == 0 then
    free = free - 1
    local lifetime, definition, try, recorded, abort = claim_ms, false, 0, 0, 0
    if start then
      definition = redis.call('GET', job_prefix .. id)
      try = redis.call('INCR', retry_prefix .. id)
      redis.call('EXPIRE', retry_prefix .. id, ARGV[14])
      local record = record_prefix .. id
      local seen = redis.call('HMGET', record, 'enqueued_at', 'abort_requested')
      if seen[1] then
        lifetime, recorded = short_claim_ms, 1
        if seen[2] then abort = 1 end
        redis.call('HSET', record, 'started_at', now, 'attempt', try, 'worker', worker)
        redis.call('PUBLISH', events_prefix .. id, '')
      end
    end
    redis.call('PSETEX', claim, lifetime, '1')
    for _, value in ipairs({id, due[i + 1], definition, try, recorded, abort}) do taken[#taken + 1] = value end
  end
end
return taken
"""


@dataclass(slots=True)
class Started:
    """What the take script did for a job beyond claiming it, as the job's run_job task sees it (`STARTED`)."""

    job_id: str
    # arq's start transaction's replies (the definition, the try, the counter's EXPIRE), until arq asks for them.
    arq_replies: list[Any] | None
    recorded: bool  # the service's record marks the start, and the start was announced
    abort_requested: bool


STARTED: contextvars.ContextVar[Started | None] = contextvars.ContextVar("started", default=None)


def started(job_id: str) -> Started | None:
    """The take script's start of `job_id`, if it started the job this task runs."""
    found = STARTED.get()
    return found if found is not None and found.job_id == job_id else None


class _AnsweredPipeline(Pipeline):
    """arq's start transaction of a job the take script started: `execute` returns the script's replies."""

    def __init__(self, redis: ArqRedis, start: Started, replies: list[Any]) -> None:
        super().__init__(redis.connection_pool, redis.response_callbacks, True, None)
        self._start, self._replies = start, replies

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        job_id = self._start.job_id
        expected = [
            ("GET", job_key_prefix + job_id),
            ("INCRBY", retry_key_prefix + job_id, 1),
            ("EXPIRE", retry_key_prefix + job_id, ARQ_RETRY_KEY_TTL_S),
        ]
        sent = [args for args, _ in self.command_stack]
        await self.reset()  # type: ignore[no-untyped-call]
        if sent != expected:  # never sent: the try is counted already
            raise RuntimeError(f"arq's start transaction is not the one TAKE_SCRIPT runs: {sent!r}")
        return self._replies


def _answer_start_transactions(redis: ArqRedis) -> None:
    """Make the first transaction of a started job's run_job task (arq's start transaction) take its replies from
    the take script; every other pipeline is the pool's own. Idempotent."""
    if redis in _answering:
        return
    make_pipeline = redis.pipeline

    def pipeline(transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        start = STARTED.get()
        if transaction and start is not None and start.arq_replies is not None:
            replies, start.arq_replies = start.arq_replies, None
            return _AnsweredPipeline(redis, start, replies)
        return make_pipeline(transaction, shard_hint)

    redis.pipeline = pipeline  # type: ignore[method-assign]
    _answering.add(redis)


async def take_jobs(worker: arq.worker.Worker, count: int) -> None:
    """Claim up to the free slots among the next `count` due jobs, and start them."""
    free = worker.max_jobs - worker.job_counter
    if free <= 0:
        return
    # arq's start transaction differs when it checks aborts itself: then it is left to arq.
    start = not worker.allow_abort_jobs
    if start:
        _answer_start_transactions(worker.pool)
    script = worker.pool.register_script(TAKE_SCRIPT)
    claim_ms = int(worker.in_progress_timeout_s * 1000)
    worker_id = str(worker.ctx.get("worker_id", ""))
    prefixes = [in_progress_key_prefix, job_key_prefix, retry_key_prefix, keys.job_record(""), keys.job_events("")]
    args = [timestamp_ms(), claim_ms, worker._queue_read_offset, count, free, CLAIM_TTL_S * 1000, int(start)]
    taken: list[Any] = await script(keys=[worker.queue_name], args=[*args, worker_id, *prefixes, ARQ_RETRY_KEY_TTL_S])
    # Every free slot taken: more due jobs may be waiting, and arq does not read the queue while it runs `max_jobs`
    # jobs, so a job that ends must wake the worker (or they would wait for `poll_delay`). Fewer taken than free:
    # the queue had no more, and the next enqueue's wake-up will come.
    if len(taken) // REPLIES_PER_JOB == free:
        _saturated.add(worker)
    else:
        _saturated.discard(worker)
    for n in range(0, len(taken), REPLIES_PER_JOB):
        raw_id, score, definition, job_try, recorded, abort = taken[n : n + REPLIES_PER_JOB]
        job_id = raw_id.decode()
        context = contextvars.copy_context()
        if start:
            replies = [definition, job_try, True]
            context.run(STARTED.set, Started(job_id, replies, recorded == 1, abort == 1))
        aborts.starting(job_id)  # an abort from now on reaches the job, even before its wrapper runs
        await worker.sem.acquire()  # never waits: the free slots were counted above, and nothing awaited since
        worker.job_counter += 1
        task = worker.loop.create_task(worker.run_job(job_id, int(float(score))), context=context)
        task.add_done_callback(lambda _: worker._release_sem_dec_counter_on_complete())
        task.add_done_callback(lambda _, job_id=job_id: aborts.forget(job_id))  # type: ignore[misc]
        task.add_done_callback(lambda _: _wake_if_saturated(worker))
        worker.tasks[job_id] = task


def _wake_if_saturated(worker: arq.worker.Worker) -> None:
    # A done callback, after arq's own that frees the slot (arq's `after_job_end` hook runs before it). An idle
    # worker looks once more too: a look that ran while its last jobs were ending may have found no slots.
    if worker in _saturated or worker.job_counter == 0:
        wake_local()


async def poll_iteration(self: arq.worker.Worker) -> None:
    """Drop-in for `arq.worker.Worker._poll_iteration` (arq 0.26-0.28), with `take_jobs` for its read and claims."""
    count = self.queue_read_limit
    if self.burst and self.max_burst_jobs >= 0:
        burst_jobs_remaining = self.max_burst_jobs - self._jobs_started()
        if burst_jobs_remaining < 1:
            return
        count = min(burst_jobs_remaining, count)
    if self.allow_pick_jobs:
        await take_jobs(self, count)
    if self.allow_abort_jobs:
        await self._cancel_aborted_jobs()
    for job_id, task in list(self.tasks.items()):
        if task.done():
            del self.tasks[job_id]
            task.result()  # as arq: an error in run_job itself ends the worker
    await self.heart_beat()


def install_batch_claims() -> None:
    """Make arq's workers poll with `poll_iteration` above; idempotent."""
    arq.worker.Worker._poll_iteration = poll_iteration  # type: ignore[method-assign]
