"""The engine's own cron jobs: trim the all-jobs listing index, remove report files whose jobs are gone.

The enqueue script trims a user's own index as it adds to it; the all-jobs index is trimmed here instead, so an
anonymous enqueue (the common case) does not pay for it. The listing drops expired ids it meets in between.
Each runs every five minutes on one worker of many (arq's `unique` cron jobs).
"""

import time
from typing import Any

from arq.cron import cron

from service.core import keys
from service.core.enqueue import JOB_EXPIRES_MS, RECORD_MARGIN_S
from service.engine.runtime import ENGINE
from service.kinds import reports
from service.settings import Settings, get_settings


def _settings(ctx: dict[str, Any]) -> Settings:
    engine = ctx.get(ENGINE)
    return engine.settings if engine is not None else get_settings()


async def trim_job_index(ctx: dict[str, Any]) -> int:
    """Remove index entries older than the longest a record lives; returns how many were removed."""
    record_lifetime_ms = JOB_EXPIRES_MS + (RECORD_MARGIN_S + _settings(ctx).result_ttl) * 1000
    # Index scores are enqueue times in microseconds.
    now_us = time.time_ns() // 1000
    async with ctx["redis"].pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(keys.ALL_JOBS_INDEX, "-inf", now_us - record_lifetime_ms * 1000)
        # Failures are indexed by the time they ended, and kept for FAILED_TTL.
        pipe.zremrangebyscore(keys.FAILED_INDEX, "-inf", now_us - _settings(ctx).failed_ttl * 1_000_000)
        removed, _ = await pipe.execute()
    return int(removed)


async def remove_expired_reports(ctx: dict[str, Any]) -> int:
    return await reports.remove_expired_reports(ctx["redis"], _settings(ctx))


CRON_JOBS = [
    cron(remove_expired_reports, name="remove_expired_reports", minute=set(range(0, 60, 5)), unique=True),
    cron(trim_job_index, name="trim_job_index", minute=set(range(2, 60, 5)), unique=True),
]
