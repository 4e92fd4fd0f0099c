"""The live worker processes, from their heartbeats (what `/health`, `/metrics` and the dashboard show)."""

import orjson
from arq.connections import ArqRedis

# pydantic validates this TypedDict (the dashboard returns it), which on Python 3.11 needs typing_extensions.
from typing_extensions import TypedDict

from service.core import keys

# A worker counts as alive while its heartbeat is younger than this (it beats every 2 s).
WORKER_ALIVE_S = 10


class WorkerInfo(TypedDict):
    id: str
    pid: int
    host: str
    started_at: int
    last_seen: int
    jobs_done: int
    running: int


def alive_since_ms(now_s: float) -> int:
    """Heartbeats at or after this time (ms) are from live workers."""
    return int((now_s - WORKER_ALIVE_S) * 1000)


async def alive_workers(redis: ArqRedis, now_s: float) -> list[WorkerInfo]:
    ids = await redis.zrangebyscore(keys.WORKERS_ZSET, alive_since_ms(now_s), "+inf")
    if not ids:
        return []
    infos = await redis.mget([keys.worker_info(i.decode()) for i in ids])
    return [orjson.loads(info) for info in infos if info]
