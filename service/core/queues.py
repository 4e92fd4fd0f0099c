"""What each queue holds now: due jobs, scheduled ones, how long the oldest has been due, and the live workers that
serve it. One read for `/metrics`, the dashboard and the command line."""

import time
from dataclasses import dataclass

from arq.connections import ArqRedis

from service.core import keys
from service.core.workers import WorkerInfo, alive_workers


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str
    due: int  # due to run: waiting for a worker, or running (a job stays in its queue while it runs)
    scheduled: int  # not due yet: scheduled for later, or a retry waiting out its back-off
    oldest_due_s: float  # how long the longest-due job has been due (0 when none is)
    workers: int  # live worker processes that take jobs from it


async def read_queues(
    redis: ArqRedis, queues: list[str], now_s: float | None = None
) -> tuple[list[QueueStats], list[WorkerInfo]]:
    """Each queue's figures, and the live workers they were counted from; one round trip for the queues."""
    now_s = time.time() if now_s is None else now_s
    now_ms = int(now_s * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.zcount(keys.queue_key(queue), "-inf", now_ms)
            pipe.zcount(keys.queue_key(queue), f"({now_ms}", "+inf")
            pipe.zrangebyscore(keys.queue_key(queue), "-inf", now_ms, start=0, num=1, withscores=True)
        replies = await pipe.execute()
    workers = await alive_workers(redis, now_s)
    stats = []
    for n, queue in enumerate(queues):
        due, scheduled, first = replies[3 * n : 3 * n + 3]
        stats.append(
            QueueStats(
                name=queue,
                due=int(due),
                scheduled=int(scheduled),
                oldest_due_s=(now_ms - first[0][1]) / 1000 if first else 0.0,
                workers=sum(queue in w.get("queues", [queue]) for w in workers),
            )
        )
    return stats, workers
