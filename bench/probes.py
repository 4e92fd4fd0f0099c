"""Probe jobs, and the settings of bare arq: `arq bench.probes.ARQ_DEFAULTS` (arq accepts a dict).

This module must not import `worker_settings`: that module makes arq's CLI build this service's worker
(`service.engine.ServiceWorker`), and bare arq is to be measured as arq ships.
"""

import asyncio
import os
import time
from typing import Any

from arq.connections import RedisSettings
from arq.worker import func

from service.core.serialization import job_deserializer, job_serializer
from service.engine import MAX_JOBS, POLL_DELAY_S


async def pickup_probe(ctx: dict[str, Any]) -> float:
    """The wall-clock time of this job's first line, also pushed to `pickup_key(job_id)` for a waiting client."""
    started = time.time()
    await ctx["redis"].rpush(pickup_key(ctx["job_id"]), repr(started))
    return started


def pickup_key(job_id: str) -> str:
    return f"bench:pickup:{job_id}"


async def finish_probe(_: dict[str, Any]) -> float:
    """The wall-clock time at which this job ends."""
    return time.time()


async def sleep_probe(_: dict[str, Any], seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return True


PROBES = [
    func(pickup_probe, name="pickup_probe"),
    func(finish_probe, name="finish_probe"),
    func(sleep_probe, name="sleep_probe"),
]

# arq's defaults (poll_delay 0.5 s, max_jobs 10), but for the serializer: one client reads the results of both.
ARQ_DEFAULTS = {
    "functions": PROBES,
    "redis_settings": RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0")),
    "job_serializer": job_serializer,
    "job_deserializer": job_deserializer,
}
# Bare arq with our worker's poll_delay and max_jobs: the drain rate this service must not fall below.
ARQ_OUR_SETTINGS = {**ARQ_DEFAULTS, "poll_delay": POLL_DELAY_S, "max_jobs": MAX_JOBS}
