"""A heartbeat per worker process, so `/health` counts live workers one by one."""

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping

import orjson
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from service.core import keys
from service.core.counters import MetricsBuffer

logger = logging.getLogger(__name__)

WORKER_HEARTBEAT_S = 2.0
# Entries of workers that stopped beating this long ago are pruned from the set.
FORGET_AFTER_S = 3600


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def beat(redis: ArqRedis, worker_id: str, started_ms: int, stats: Mapping[str, int]) -> None:
    now_ms = int(time.time() * 1000)
    info = orjson.dumps(
        {
            "id": worker_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": started_ms,
            "last_seen": now_ms,
            "jobs_done": stats.get("done", 0),
            "running": stats.get("running", 0),
        }
    )
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(keys.WORKERS_ZSET, {worker_id: now_ms})
        pipe.zremrangebyscore(keys.WORKERS_ZSET, "-inf", now_ms - FORGET_AFTER_S * 1000)
        pipe.set(keys.worker_info(worker_id), info, ex=int(FORGET_AFTER_S))
        await pipe.execute()


async def beat_forever(
    redis: ArqRedis, worker_id: str, stats: Mapping[str, int], metrics: MetricsBuffer, stop: asyncio.Event
) -> None:
    """Beat every WORKER_HEARTBEAT_S until `stop` is set, adding the process's metrics counted since the last beat
    to Redis. Stopped, not cancelled: a beat cancelled in flight could still land after `forget`."""
    started_ms = int(time.time() * 1000)
    while not stop.is_set():
        await metrics.flush(redis)
        try:
            await beat(redis, worker_id, started_ms, stats)
        except (RedisError, OSError) as e:
            logger.warning("worker heartbeat failed: %r", e)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WORKER_HEARTBEAT_S)


async def forget(redis: ArqRedis, worker_id: str) -> None:
    """Remove a stopping worker at once, so it is not counted for the next ten seconds."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.WORKERS_ZSET, worker_id)
        pipe.delete(keys.worker_info(worker_id))
        await pipe.execute()
