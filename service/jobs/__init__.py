"""The worker's job functions, cron jobs, and start-up and shutdown hooks."""

import asyncio
import contextlib
from typing import Any

from arq.cron import cron

from ..settings import get_settings
from . import heartbeat, wakeup
from .claims import ClaimKeeper
from .context import job_redis
from .notifications import NOTIFICATION_MAX_TRIES, send_notification
from .reports import generate_report, remove_expired_reports
from .runtime import announce_end, instrumented, job_function
from .stats import process_stats
from .tasks import run_sleep_task

FUNCTIONS = [
    job_function(run_sleep_task),
    job_function(send_notification, max_tries=NOTIFICATION_MAX_TRIES),
    job_function(generate_report),
]
# Every five minutes; `unique` lets one worker of many run it.
CRON_JOBS = [
    cron(
        instrumented(remove_expired_reports, record=False),
        name="remove_expired_reports",
        minute=set(range(0, 60, 5)),
        unique=True,
    )
]


async def startup(ctx: dict[str, Any]) -> None:
    """Fill only the ctx keys still missing (tests inject their own), then start the background loops."""
    ctx.setdefault("settings", get_settings())
    ctx.setdefault("worker_id", heartbeat.new_worker_id())
    claims = ctx["claims"] = ClaimKeeper(ctx["settings"].redis_url)
    claims.start()
    redis = job_redis(ctx)
    ctx["background_tasks"] = [
        asyncio.create_task(heartbeat.beat_forever(redis, ctx["worker_id"], process_stats(ctx)), name="heartbeat"),
        asyncio.create_task(wakeup.listen_for_wakeups(redis), name="wakeup-listener"),
    ]


async def shutdown(ctx: dict[str, Any]) -> None:
    tasks: list[asyncio.Task[None]] = ctx.pop("background_tasks", [])
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if claims := ctx.pop("claims", None):
        await asyncio.to_thread(claims.stop)
    with contextlib.suppress(Exception):
        await heartbeat.forget(job_redis(ctx), ctx["worker_id"])


async def after_job_end(ctx: dict[str, Any]) -> None:
    """arq's `after_job_end` hook: announce the change, and look at the queue again now that a slot is free."""
    wakeup.wake_local()
    await announce_end(ctx)
