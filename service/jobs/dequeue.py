"""How a worker takes jobs off arq's queue: every due job it has room for, read and claimed in one round trip.

Each poll of arq's worker (`Worker._poll_iteration`) reads up to `queue_read_limit` due ids from the queue, then
claims them one at a time (`Worker.start_jobs`), each with WATCH, EXISTS, ZSCORE and MULTI/PSETEX/EXEC: four
round trips and six commands per job, in sequence, before the next job may start. It also reads, and tries to
claim, the jobs it is running itself: a job stays in the queue until it ends. On one worker with instant jobs
that was the ceiling of the drain rate and half of the pickup latency.

`poll_iteration` below keeps arq's semantics (due jobs in queue order; a job claimed by any worker is left
alone; the claim is arq's in-progress key with arq's lifetime; slots are arq's counter and semaphore; burst
limits, aborts, heartbeats as arq does them) and does the read and the claims in one atomic script.
"""

import weakref

import arq.worker
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms

from .wakeup import wake_local

# Workers whose last look at the queue filled every free slot.
_saturated: "weakref.WeakSet[arq.worker.Worker]" = weakref.WeakSet()

# Read due ids in queue order and claim each one nobody has claimed, up to the free slots; returns the claimed
# ids with their queue scores. The in-progress keys are named from ARGV (arq's prefix), not declared in KEYS:
# the script is for one server, as arq is (it does not support Redis Cluster).
# KEYS: queue. ARGV: now ms, claim lifetime ms, in-progress key prefix, read offset, read count, free slots.
TAKE_SCRIPT = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', ARGV[4], ARGV[5])
local free, claimed = tonumber(ARGV[6]), {}
for i = 1, #due, 2 do
  if free == 0 then break end
  local claim = ARGV[3] .. due[i]
  if redis.call('EXISTS', claim) == 0 then
    redis.call('PSETEX', claim, ARGV[2], '1')
    claimed[#claimed + 1] = due[i]
    claimed[#claimed + 1] = due[i + 1]
    free = free - 1
  end
end
return claimed
"""


async def take_jobs(worker: arq.worker.Worker, count: int) -> None:
    """Claim up to the free slots among the next `count` due jobs, and start them."""
    free = worker.max_jobs - worker.job_counter
    if free <= 0:
        return
    script = worker.pool.register_script(TAKE_SCRIPT)
    claim_ms = int(worker.in_progress_timeout_s * 1000)
    args: list[int | str] = [timestamp_ms(), claim_ms, in_progress_key_prefix, worker._queue_read_offset, count, free]
    claimed: list[bytes] = await script(keys=[worker.queue_name], args=args)
    # Every free slot taken: more due jobs may be waiting, and arq does not read the queue while it runs `max_jobs`
    # jobs, so a job that ends must wake the worker (or they would wait for `poll_delay`). Fewer taken than free:
    # the queue had no more, and the next enqueue's wake-up will come.
    if len(claimed) // 2 == free:
        _saturated.add(worker)
    else:
        _saturated.discard(worker)
    for job_id, score in zip(claimed[::2], claimed[1::2], strict=True):
        await worker.sem.acquire()  # never waits: the free slots were counted above, and nothing awaited since
        worker.job_counter += 1
        task = worker.loop.create_task(worker.run_job(job_id.decode(), int(float(score))))
        task.add_done_callback(lambda _: worker._release_sem_dec_counter_on_complete())
        task.add_done_callback(lambda _: _wake_if_saturated(worker))
        worker.tasks[job_id.decode()] = task


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
