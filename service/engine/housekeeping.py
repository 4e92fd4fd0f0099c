"""The engine's own cron jobs: trim the all-jobs listing index, remove report files whose jobs are gone.

The enqueue script trims a user's own index as it adds to it; the all-jobs index is trimmed here instead, so an
anonymous enqueue (the common case) does not pay for it. The listing drops expired ids it meets in between.
Each runs every five minutes on one worker of many (arq's `unique` cron jobs).
"""

import time
from typing import Any

from arq.cron import cron

from service.core import indexes, keys
from service.core.enqueue import JOB_EXPIRES_MS, RECORD_MARGIN_S
from service.engine.runtime import ENGINE
from service.kinds import reports
from service.settings import Settings, get_settings


def _settings(ctx: dict[str, Any]) -> Settings:
    engine = ctx.get(ENGINE)
    return engine.settings if engine is not None else get_settings()


async def trim_job_index(ctx: dict[str, Any]) -> int:
    """Remove index entries older than the longest a record lives; returns how many were removed from the all-jobs
    index. The kind and queue indexes of the kinds this worker knows are trimmed alike, and the ids leaving the
    all-jobs index leave the id index too (a failure's, kept longer, stays findable by id until its record goes)."""
    settings = _settings(ctx)
    record_lifetime_ms = JOB_EXPIRES_MS + (RECORD_MARGIN_S + settings.result_ttl) * 1000
    # Index scores are enqueue times in microseconds.
    now_us = time.time_ns() // 1000
    cutoff = now_us - record_lifetime_ms * 1000
    redis = ctx["redis"]
    engine = ctx.get(ENGINE)
    # arq names a cron job's function `cron:<name>`: a recurring kind's runs are indexed under the kind's name.
    names = sorted({name.removeprefix("cron:") for name in engine.functions}) if engine is not None else []
    queues = engine.queues if engine is not None else [keys.DEFAULT_QUEUE]
    failed_cutoff = now_us - settings.failed_ttl * 1_000_000
    return await indexes.trim(redis, names, queues, cutoff, failed_cutoff)


async def remove_expired_reports(ctx: dict[str, Any]) -> int:
    return await reports.remove_expired_reports(ctx["redis"], _settings(ctx))


CRON_JOBS = [
    cron(remove_expired_reports, name="remove_expired_reports", minute=set(range(0, 60, 5)), unique=True),
    cron(trim_job_index, name="trim_job_index", minute=set(range(2, 60, 5)), unique=True),
]
