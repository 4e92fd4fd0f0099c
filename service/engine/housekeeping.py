"""Cron: trim the all-jobs listing index of ids whose records have expired.

The enqueue script trims a user's own index as it adds to it; the all-jobs index is trimmed here instead, so an
anonymous enqueue (the common case) does not pay for it. The listing drops expired ids it meets in between.
"""

import time
from typing import Any

from service.core import keys
from service.core.enqueue import JOB_EXPIRES_MS, RECORD_MARGIN_S
from service.kinds.context import job_redis, job_settings


async def trim_job_index(ctx: dict[str, Any]) -> int:
    """Remove index entries older than the longest a record lives; returns how many were removed."""
    record_lifetime_ms = JOB_EXPIRES_MS + (RECORD_MARGIN_S + job_settings(ctx).result_ttl) * 1000
    # Index scores are enqueue times in microseconds.
    removed: int = await job_redis(ctx).zremrangebyscore(
        keys.ALL_JOBS_INDEX, "-inf", time.time_ns() // 1000 - record_lifetime_ms * 1000
    )
    return removed
