"""A heartbeat per worker process: in Redis, so `/health` counts live workers one by one; and in a local file, so
`python -m service check` knows whether this host's worker answers from its event loop."""

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from service.core import keys
from service.core.counters import MetricsBuffer
from service.core.scripts import LuaScript
from service.core.workers import LOCAL_BEAT_S, local_beat_file

logger = logging.getLogger(__name__)

WORKER_HEARTBEAT_S = 2.0
# Entries of workers that stopped beating this long ago are pruned from the set.
FORGET_AFTER_S = 3600


DEPTH_KEEP_S = 2 * 3600
# KEYS: the queues, then as many sample keys. ARGV: now ms, the samples' lifetime s.
DEPTH = LuaScript(
    "sample_depth",
    """
local n = #KEYS / 2
for i = 1, n do
  redis.call('SET', KEYS[n + i], redis.call('ZCOUNT', KEYS[i], '-inf', ARGV[1]), 'EX', ARGV[2])
end
""",
)


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def beat(
    redis: ArqRedis, worker_id: str, started_ms: int, stats: Mapping[str, int], queues: Sequence[str] = ()
) -> None:
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
            "queues": list(queues),
        }
    )
    minute = now_ms // 60_000
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(keys.WORKERS_ZSET, {worker_id: now_ms})
        pipe.zremrangebyscore(keys.WORKERS_ZSET, "-inf", now_ms - FORGET_AFTER_S * 1000)
        pipe.set(keys.worker_info(worker_id), info, ex=int(FORGET_AFTER_S))
        if queues:
            # The dashboard's depth chart: each queue's due jobs, sampled by every worker's beat (the last wins).
            depth_keys = [keys.depth_per_minute(queue, minute) for queue in queues]
            DEPTH.queue_in_transaction(pipe, [*map(keys.queue_key, queues), *depth_keys], [now_ms, DEPTH_KEEP_S])
        await pipe.execute()


async def beat_forever(
    redis: ArqRedis,
    worker_id: str,
    stats: Mapping[str, int],
    metrics: MetricsBuffer,
    stop: asyncio.Event,
    queues: Sequence[str] = (),
) -> None:
    """Beat every WORKER_HEARTBEAT_S until `stop` is set, adding the process's metrics counted since the last beat
    to Redis. Stopped, not cancelled: a beat cancelled in flight could still land after `forget`."""
    started_ms = int(time.time() * 1000)
    while not stop.is_set():
        await metrics.flush(redis)
        try:
            await beat(redis, worker_id, started_ms, stats, queues)
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


class LocalBeat:
    """Touches this worker's file under WORKER_CHECK_DIR every LOCAL_BEAT_S from the event loop, for
    `python -m service check`, and remembers when it last did (the claim keeper reads it). No Redis: a Redis outage
    does not make a healthy worker's probe fail."""

    def __init__(self, directory: Path, worker_id: str) -> None:
        self.path = local_beat_file(directory, worker_id, os.getpid())
        self.last = time.monotonic()

    def touch(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError as e:
            logger.warning("could not mark the worker alive in %s: %r", self.path, e)
        self.last = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.touch()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LOCAL_BEAT_S)
        self.remove()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def stalled_for(self) -> float:
        """Seconds since the event loop last touched the file (read from the claim keeper's thread)."""
        return time.monotonic() - self.last
