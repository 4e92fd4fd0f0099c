"""The live worker processes: from their heartbeats in Redis (what `/health`, `/metrics` and the dashboard show),
and, for this host alone, from the files their event loops touch (`python -m service check`)."""

import os
import time
from pathlib import Path
from typing import NotRequired

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
    queues: NotRequired[list[str]]  # the queues it takes jobs from, in priority order


def alive_since_ms(now_s: float) -> int:
    """Heartbeats at or after this time (ms) are from live workers."""
    return int((now_s - WORKER_ALIVE_S) * 1000)


async def workers_seen_since(redis: ArqRedis, since_ms: int) -> list[WorkerInfo]:
    """The workers whose last heartbeat is at or after `since_ms`, as their heartbeats describe them."""
    ids = await redis.zrangebyscore(keys.WORKERS_ZSET, since_ms, "+inf")
    if not ids:
        return []
    infos = await redis.mget([keys.worker_info(i.decode()) for i in ids])
    return [orjson.loads(info) for info in infos if info]


async def alive_workers(redis: ArqRedis, now_s: float) -> list[WorkerInfo]:
    return await workers_seen_since(redis, alive_since_ms(now_s))


# A worker's event loop touches its file every LOCAL_BEAT_S; the check passes while one was touched within
# LOCAL_STALE_S by a process that still exists.
LOCAL_BEAT_S = 1.0
LOCAL_STALE_S = 10.0


def local_beat_file(directory: Path, worker_id: str, pid: int) -> Path:
    return directory / f"{worker_id}.{pid}.beat"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_local_workers(directory: Path, now: float | None = None) -> tuple[bool, str]:
    """Whether a worker process on this host is alive and its event loop answering; and a line saying so.

    Reads only local files: it never waits on Redis or the network, so a probe never hangs."""
    now = time.time() if now is None else now
    try:
        beats = list(directory.glob("*.beat"))
    except OSError as e:
        return False, f"no worker check files in {directory}: {e}"
    for beat in beats:
        pid = int(beat.name.rsplit(".", 2)[1]) if beat.name.count(".") >= 2 else 0
        try:
            age = now - beat.stat().st_mtime
        except FileNotFoundError:
            continue  # removed by a worker stopping right now
        if age <= LOCAL_STALE_S and pid and _alive(pid):
            return True, f"worker {beat.name.removesuffix('.beat')} answered {age:.1f} s ago"
    return False, f"no worker process on this host has answered in the last {LOCAL_STALE_S:g} s ({directory})"
