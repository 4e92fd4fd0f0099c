"""What each queue holds now: due jobs, scheduled ones, how long the oldest has been due, and the live workers that
serve it. One read for `/metrics`, the dashboard and the command line."""

import time
from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix

from service.core import keys
from service.core.scripts import LuaScript
from service.core.workers import WorkerInfo, alive_workers

# Running jobs are counted among the first RUNNING_LOOK_AT due entries of a queue: a job stays in its queue while it
# runs, and the workers take jobs from the head, so the running ones are there (however many thousands wait).
RUNNING_LOOK_AT = 1000

# For each queue: due jobs, how many of them run (claimed), those not due yet, and the score of the oldest due job
# that waits (false if none). KEYS: the queues. ARGV: now ms, arq's in-progress prefix, RUNNING_LOOK_AT.
QUEUES = LuaScript(
    "read_queues",
    """
local out = {}
for q = 1, #KEYS do
  local running, oldest = 0, false
  local head = redis.call('ZRANGEBYSCORE', KEYS[q], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
  for i = 1, #head, 2 do
    if redis.call('EXISTS', ARGV[2] .. head[i]) == 1 then
      running = running + 1
    elseif not oldest then
      oldest = head[i + 1]
    end
  end
  out[q] = {redis.call('ZCOUNT', KEYS[q], '-inf', ARGV[1]), running,
            redis.call('ZCOUNT', KEYS[q], '(' .. ARGV[1], '+inf'), oldest}
end
return out
""",
)


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str
    waiting: int  # due to run, and no worker has taken it yet
    running: int  # taken by a worker (a job stays in its queue while it runs)
    scheduled: int  # not due yet: scheduled for later, or a retry waiting out its back-off
    oldest_due_s: float  # how long the longest-waiting due job has waited (0 when none waits)
    workers: int  # live worker processes that take jobs from it

    @property
    def due(self) -> int:
        """Due now: waiting or running."""
        return self.waiting + self.running


async def read_queues(
    redis: ArqRedis, queues: list[str], now_s: float | None = None
) -> tuple[list[QueueStats], list[WorkerInfo]]:
    """Each queue's figures, and the live workers they were counted from."""
    now_s = time.time() if now_s is None else now_s
    now_ms = int(now_s * 1000)
    replies = await QUEUES.run(
        redis, [keys.queue_key(q) for q in queues], [now_ms, in_progress_key_prefix, RUNNING_LOOK_AT]
    )
    workers = await alive_workers(redis, now_s)
    stats = []
    for queue, (due, running, scheduled, oldest) in zip(queues, replies, strict=True):
        stats.append(
            QueueStats(
                name=queue,
                waiting=int(due) - int(running),
                running=int(running),
                scheduled=int(scheduled),
                oldest_due_s=max(0.0, (now_ms - float(oldest)) / 1000) if oldest else 0.0,
                workers=sum(queue in w.get("queues", [queue]) for w in workers),
            )
        )
    return stats, workers
