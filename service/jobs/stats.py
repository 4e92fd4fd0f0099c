"""Counters every worker process adds to in Redis, so that `/metrics` and the dashboard see all of them."""

import logging
import time
from collections import Counter
from typing import Any

from redis.exceptions import RedisError

from .. import keys
from .context import job_redis

logger = logging.getLogger(__name__)

# Histogram buckets for job durations, in seconds (Prometheus `le`).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
TERMINAL_OUTCOMES = frozenset({"success", "failure"})
THROUGHPUT_KEEP_S = 2 * 3600


def process_stats(ctx: dict[str, Any]) -> Counter[str]:
    """This worker process's own counts (jobs done, running), shared by all its jobs' ctx copies."""
    stats: Counter[str] = ctx.setdefault("stats", Counter())
    return stats


async def record_outcome(ctx: dict[str, Any], name: str, outcome: str, duration_s: float) -> None:
    """Count one try's outcome and duration; a failure to count never fails the job."""
    bucket = next((f"{le:g}" for le in DURATION_BUCKETS if duration_s <= le), "+Inf")
    try:
        async with job_redis(ctx).pipeline(transaction=False) as pipe:
            pipe.hincrby(keys.METRICS_OUTCOMES, f"{name}|{outcome}", 1)
            pipe.hincrby(keys.METRICS_DURATIONS, f"{name}|{bucket}", 1)
            pipe.hincrby(keys.METRICS_DURATIONS, f"{name}|count", 1)
            pipe.hincrbyfloat(keys.METRICS_DURATIONS, f"{name}|sum", duration_s)
            if outcome in TERMINAL_OUTCOMES:
                minute = keys.finished_per_minute(int(time.time()) // 60)
                pipe.incr(minute)
                pipe.expire(minute, THROUGHPUT_KEEP_S)
            await pipe.execute()
    except (RedisError, OSError) as e:
        logger.warning("could not record job metrics: %r", e)
