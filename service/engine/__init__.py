"""The worker's job functions, cron jobs, and start-up and shutdown hooks."""

import asyncio
import contextlib
from typing import Any

from arq.cron import cron

from service.core.counters import metrics_buffer, process_stats
from service.engine import heartbeat, wakeup
from service.engine.batching import batcher
from service.engine.claims import ClaimKeeper
from service.engine.housekeeping import trim_job_index
from service.engine.runtime import announce_end, instrumented, job_function
from service.engine.transactions import coalesce_transactions
from service.kinds.context import job_redis
from service.kinds.notifications import NOTIFICATION_MAX_TRIES, send_notification
from service.kinds.reports import generate_report, remove_expired_reports
from service.kinds.tasks import run_sleep_task
from service.settings import get_settings

# Jobs one worker process runs at once (arq's `max_jobs`).
MAX_JOBS = 100
# How long a starting worker waits for its wake-up and abort subscriptions before it takes jobs anyway.
SUBSCRIBE_WAIT_S = 5.0
# arq's `poll_delay`: an upper bound only, as enqueues wake idle workers through pub/sub (`wakeup`).
POLL_DELAY_S = 0.25
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
    ),
    cron(
        instrumented(trim_job_index, record=False),
        name="trim_job_index",
        minute=set(range(2, 60, 5)),
        unique=True,
    ),
]


async def startup(ctx: dict[str, Any]) -> None:
    """Fill only the ctx keys still missing (tests inject their own), then start the background loops."""
    ctx.setdefault("settings", get_settings())
    ctx.setdefault("worker_id", heartbeat.new_worker_id())
    claims = ctx["claims"] = ClaimKeeper(ctx["settings"].redis_url)
    claims.start()
    redis = job_redis(ctx)
    ctx["transactions"] = coalesce_transactions(redis)  # arq's own per-job transactions, batched per loop turn
    batcher(ctx)  # made here, in the ctx every job's copy comes from
    stop_beating = ctx["stop_beating"] = asyncio.Event()
    beats = heartbeat.beat_forever(redis, ctx["worker_id"], process_stats(ctx), metrics_buffer(ctx), stop_beating)
    ctx["heartbeat"] = asyncio.create_task(beats, name="heartbeat")
    stop_listening = ctx["stop_listening"] = asyncio.Event()
    subscribed = asyncio.Event()
    listener = wakeup.listen(redis, stop_listening, subscribed)
    ctx["listener"] = asyncio.create_task(listener, name="wakeup-listener")
    # No job is claimed before aborts can be heard (an abort published earlier would reach no one). Bounded: a
    # worker that cannot subscribe still runs jobs, and the listener keeps trying.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_WAIT_S)


async def _stop_loops(ctx: dict[str, Any]) -> None:
    """Stop the heartbeat and the wake-up listener. The heartbeat is told to stop rather than cancelled, so that its
    last beat lands before `heartbeat.forget`. The listener is told and cancelled: redis-py's cleanup can turn its
    cancellation into an error, and then the event still ends it within a tick. Either is cancelled if it has not
    stopped in time (during a Redis outage)."""
    for stop in ("stop_beating", "stop_listening"):
        if stop in ctx:
            ctx[stop].set()
    listener: asyncio.Task[None] | None = ctx.pop("listener", None)
    if listener is not None:
        listener.cancel()
    running = {t for t in (ctx.pop("heartbeat", None), listener) if t is not None}
    if not running:
        return
    _, late = await asyncio.wait(running, timeout=heartbeat.WORKER_HEARTBEAT_S)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=1)


async def shutdown(ctx: dict[str, Any]) -> None:
    await _stop_loops(ctx)
    if claims := ctx.pop("claims", None):
        await asyncio.to_thread(claims.stop)
    # Bookkeeping still in flight (a cancelled job's, say) ends before arq closes the pool under it.
    for sender in (ctx.get("transactions"), ctx.get("batcher")):
        if sender is not None:
            await sender.drain()
    await metrics_buffer(ctx).flush(job_redis(ctx))
    with contextlib.suppress(Exception):
        await heartbeat.forget(job_redis(ctx), ctx["worker_id"])


async def after_job_end(ctx: dict[str, Any]) -> None:
    """arq's `after_job_end` hook: announce the change (a full worker's wake-up is `dequeue._wake_if_saturated`'s)."""
    await announce_end(ctx)
