"""What every job gets around its own code: start recorded and announced, retries with backoff, one log line at
its start and one at its end."""

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry
from arq.constants import in_progress_key_prefix
from arq.typing import WorkerCoroutine
from arq.utils import timestamp_ms
from arq.worker import Function, func
from redis.asyncio.client import Pipeline

from service.core import keys
from service.core.counters import metrics_buffer, process_stats
from service.core.enqueue import RECORD_MARGIN_S
from service.core.failures import JobAborted, PermanentFailure, TransientFailure, public_error
from service.engine import aborts, dequeue
from service.engine.batching import batcher
from service.engine.claims import CLAIM_TTL_S, ClaimKeeper
from service.kinds.context import job_redis, job_settings

logger = logging.getLogger(__name__)

JobCoroutine = Callable[..., Awaitable[Any]]
DEFAULT_MAX_TRIES = 5
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0


def backoff_s(job_try: int, scale: float = 1.0) -> float:
    """Exponential backoff with "equal jitter": half the step is fixed, half random, so retries spread out."""
    step = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** (job_try - 1))
    return (step / 2 + random.uniform(0, step / 2)) * scale


async def _record_start(ctx: dict[str, Any]) -> bool:
    """Record and announce the start; True if the job was aborted before it could start."""
    job_id = ctx["job_id"]
    record_key = keys.job_record(job_id)
    started = {"started_at": timestamp_ms(), "attempt": ctx["job_try"], "worker": ctx.get("worker_id", "")}

    def commands(pipe: Pipeline) -> None:
        # arq claimed the job for its largest timeout + 10 s; shorten that, the claim keeper renews it.
        pipe.pexpire(in_progress_key_prefix + job_id, CLAIM_TTL_S * 1000)
        pipe.hmget(record_key, ["enqueued_at", "abort_requested"])
        pipe.hset(record_key, mapping=started)
        pipe.publish(keys.job_events(job_id), b"")

    _, (enqueued_at, abort_requested), _, _ = await batcher(ctx).send(commands)
    if enqueued_at is None:
        # Queued by another client (arq's own enqueue_job, say): the record was created just now, without the
        # lifetime service.core.enqueue.enqueue gives it.
        await job_redis(ctx).expire(record_key, job_settings(ctx).result_ttl + RECORD_MARGIN_S)
    return abort_requested is not None


async def _start(ctx: dict[str, Any]) -> bool:
    """Track the job for aborts, and record its start unless the worker did as it claimed it (`dequeue`); True if
    the job was aborted before it could start."""
    job_id = ctx["job_id"]
    aborted = aborts.track(job_id)  # from now on an abort cancels this task
    start = dequeue.started(job_id)
    if start is not None and start.recorded:
        return aborted or start.abort_requested
    return await _record_start(ctx) or aborted


async def _record_retry(ctx: dict[str, Any], error: BaseException) -> None:
    error_info = public_error(error)
    record = {"error_type": error_info["type"], "error_message": error_info["message"]}
    await job_redis(ctx).hset(keys.job_record(ctx["job_id"]), mapping=record)  # type: ignore[misc]  # async client


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "success"
    if isinstance(exc, Retry):
        return "retry"
    if isinstance(exc, (asyncio.CancelledError, JobAborted)):
        return "cancelled"  # an abort is counted by the API, which knows of aborts before a start too
    return "failure"


async def _translate(ctx: dict[str, Any], exc: BaseException, max_tries: int) -> BaseException:
    """What a job's exception becomes for arq: a `TransientFailure` arq's `Retry` with backoff (or a
    `PermanentFailure` on the last try), the cancellation of an aborted job a `JobAborted` failure (which arq
    records as the result; a cancellation it would run again); anything else stays as it is."""
    if isinstance(exc, TransientFailure):
        job_try = ctx["job_try"]
        if job_try >= max_tries:
            return PermanentFailure(f"gave up after {job_try} tries: {exc}")
        await _record_retry(ctx, exc)
        return Retry(defer=backoff_s(job_try, job_settings(ctx).sleep_scale))
    if isinstance(exc, asyncio.CancelledError) and aborts.was_aborted(ctx["job_id"]):
        return JobAborted("the job was aborted while it ran")
    return exc  # a cancellation by a worker shutting down included: arq puts the job back in the queue


def instrumented(
    coroutine: JobCoroutine, *, record: bool = True, max_tries: int = DEFAULT_MAX_TRIES
) -> WorkerCoroutine:
    """Wrap `coroutine` with the bookkeeping every job needs: its start recorded and announced and its abort
    honoured (unless `record` is False, as for cron jobs, which have no record); failures translated for arq
    (`_translate`); its outcome counted; one log line at the start and one at the end."""
    name = coroutine.__name__

    @functools.wraps(coroutine)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        job_id = ctx["job_id"]
        claims: ClaimKeeper | None = ctx.get("claims") if record else None
        stats = process_stats(ctx)
        stats["running"] += 1
        fields = {"job_id": job_id, "job_name": name, "job_try": ctx["job_try"]}
        logger.debug("job started", extra=fields)  # arq logs each start too; "job ended" has the duration
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            # Held inside the try, so the finally always releases it: a claim left in the keeper would be renewed
            # for ever, even once another worker has taken the job over.
            if claims is not None:
                claims.hold(job_id)
            if record and await _start(ctx):
                raise JobAborted("the job was aborted before it started")
            return await coroutine(ctx, *args, **kwargs)
        except BaseException as e:
            error = await _translate(ctx, e, max_tries)
            if error is e:
                raise
            raise error from (None if isinstance(error, JobAborted) else e)
        finally:
            if record:
                aborts.untrack(job_id)
            if claims is not None:
                claims.release(job_id)
            duration = round(time.perf_counter() - started, 6)
            outcome = _outcome(error)
            stats["running"] -= 1
            stats["done"] += 1
            if record:
                metrics_buffer(ctx).add(name, outcome, duration)
            level = logging.WARNING if outcome == "failure" else logging.INFO
            error_name = type(error).__name__ if error else None
            logger.log(
                level, "job ended", extra={**fields, "duration_s": duration, "outcome": outcome, "error": error_name}
            )

    return run


def job_function(
    coroutine: JobCoroutine, *, max_tries: int = DEFAULT_MAX_TRIES, timeout_s: float | None = None
) -> Function:
    """Register `coroutine` with arq under its own name (the wire format of its jobs), instrumented."""
    return func(
        instrumented(coroutine, max_tries=max_tries), name=coroutine.__name__, max_tries=max_tries, timeout=timeout_s
    )


async def announce_end(ctx: dict[str, Any]) -> None:
    """arq's `after_job_end` hook (after the result or the retry is written): tell stream subscribers.

    Not awaited: the job's slot is free without waiting for the reply (the batch goes out next loop turn, and the
    worker's shutdown drains the batcher). A lost announcement delays a stream by its re-read, nothing more.
    """
    channel = keys.job_events(ctx["job_id"])
    batcher(ctx).send(lambda pipe: pipe.publish(channel, b"")).add_done_callback(_log_lost_announcement)


def _log_lost_announcement(future: "asyncio.Future[list[Any]]") -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        logger.warning("could not announce a job's end: %r", error)
