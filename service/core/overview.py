"""What the operator's views read from Redis, in one place: `/health`, `/metrics`' counters, the dashboard's
per-minute charts, and its "something changed" signal. The web room renders them; it sends no command itself."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from arq.connections import ArqRedis

from service.core import keys
from service.core.events import SUBSCRIBE_CONFIRM_S
from service.core.workers import alive_since_ms


@dataclass(frozen=True, slots=True)
class Health:
    workers: int  # live worker processes
    due: dict[str, int]  # jobs due to run now, per queue


async def read_health(redis: ArqRedis, queues: list[str], now_s: float) -> Health:
    """Live workers and each queue's due jobs, in one round trip (what a load balancer polls)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcount(keys.WORKERS_ZSET, alive_since_ms(now_s), "+inf")
        for queue in queues:
            pipe.zcount(keys.queue_key(queue), "-inf", int(now_s * 1000))
        workers, *due = await pipe.execute()
    return Health(workers=int(workers), due=dict(zip(queues, map(int, due), strict=True)))


@dataclass(frozen=True, slots=True)
class Counters:
    """The totals every process adds to: `field -> count` hashes (`service.core.counters`)."""

    enqueued: dict[bytes, bytes]
    outcomes: dict[bytes, bytes]
    durations: dict[bytes, bytes]
    waits: dict[bytes, bytes]


async def read_counters(redis: ArqRedis) -> Counters:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.METRICS_ENQUEUED)
        pipe.hgetall(keys.METRICS_OUTCOMES)
        pipe.hgetall(keys.METRICS_DURATIONS)
        pipe.hgetall(keys.METRICS_WAITS)
        enqueued, outcomes, durations, waits = await pipe.execute()
    return Counters(enqueued, outcomes, durations, waits)


@dataclass(frozen=True, slots=True)
class Minute:
    minute: int  # Unix time // 60
    finished: int
    failed: int
    waits: dict[bytes, bytes]  # wait bucket (`le`) -> tries that started in that minute after waiting that long


@dataclass(frozen=True, slots=True)
class Charts:
    minutes: list[Minute]
    depth: dict[str, list[int | None]]  # each queue's due jobs per minute, as the workers' beats sampled them


async def read_charts(redis: ArqRedis, queues: list[str], minutes: list[int]) -> Charts:
    """The dashboard's charts over `minutes`, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.mget([keys.finished_per_minute(m) for m in minutes])
        pipe.mget([keys.failed_per_minute(m) for m in minutes])
        for minute in minutes:
            pipe.hgetall(keys.waits_per_minute(minute))
        for queue in queues:
            pipe.mget([keys.depth_per_minute(queue, m) for m in minutes])
        finished, failed, *rest = await pipe.execute()
    waits, depths = rest[: len(minutes)], rest[len(minutes) :]
    return Charts(
        minutes=[
            Minute(m, int(f or 0), int(x or 0), w) for m, f, x, w in zip(minutes, finished, failed, waits, strict=True)
        ],
        depth={
            queue: [None if d is None else int(d) for d in history]
            for queue, history in zip(queues, depths, strict=True)
        },
    )


async def job_changes(redis: ArqRedis, idle_s: float, coalesce_s: float) -> AsyncIterator[None]:
    """Yields at once, then after any job's change (a burst of them coalesced over `coalesce_s`), and at least every
    `idle_s`: when to read the dashboard again."""
    async with redis.pubsub() as pubsub:
        await pubsub.psubscribe(keys.job_events("*"))
        await pubsub.get_message(timeout=SUBSCRIBE_CONFIRM_S)
        while True:
            yield
            if await pubsub.get_message(ignore_subscribe_messages=True, timeout=idle_s) is not None:
                await asyncio.sleep(coalesce_s)  # a burst of changes makes one update
                while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0) is not None:
                    pass
