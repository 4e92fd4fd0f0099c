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

from .. import keys
from ..failures import PermanentFailure, TransientFailure, public_error
from .claims import CLAIM_TTL_S, ClaimKeeper
from .context import job_redis, job_settings
from .stats import process_stats, record_outcome

logger = logging.getLogger(__name__)

JobCoroutine = Callable[..., Awaitable[Any]]
# A record touched at start lives at least this long past the result (arq's job_timeout is 300 s).
RECORD_MARGIN_S = 600
DEFAULT_MAX_TRIES = 5
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0


def backoff_s(job_try: int, scale: float = 1.0) -> float:
    """Exponential backoff with "equal jitter": half the step is fixed, half random, so retries spread out."""
    step = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** (job_try - 1))
    return (step / 2 + random.uniform(0, step / 2)) * scale


async def _record_start(ctx: dict[str, Any]) -> None:
    job_id = ctx["job_id"]
    record_key = keys.job_record(job_id)
    async with job_redis(ctx).pipeline(transaction=False) as pipe:
        # arq claimed the job for its largest timeout + 10 s; shorten that, the claim keeper renews it.
        pipe.pexpire(in_progress_key_prefix + job_id, CLAIM_TTL_S * 1000)
        started = {"started_at": timestamp_ms(), "attempt": ctx["job_try"], "worker": ctx.get("worker_id", "")}
        pipe.hset(record_key, mapping=started)
        pipe.expire(record_key, job_settings(ctx).result_ttl + RECORD_MARGIN_S)
        pipe.publish(keys.job_events(job_id), b"")
        await pipe.execute()


async def _record_retry(ctx: dict[str, Any], error: BaseException) -> None:
    error_info = public_error(error)
    record = {"error_type": error_info["type"], "error_message": error_info["message"]}
    await job_redis(ctx).hset(keys.job_record(ctx["job_id"]), mapping=record)  # type: ignore[misc]  # async client


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "success"
    if isinstance(exc, Retry):
        return "retry"
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return "failure"


def instrumented(
    coroutine: JobCoroutine, *, record: bool = True, max_tries: int = DEFAULT_MAX_TRIES
) -> WorkerCoroutine:
    """Wrap `coroutine` with the bookkeeping every job needs: its start recorded and announced (unless `record` is
    False, as for cron jobs, which have no record); a `TransientFailure` turned into arq's `Retry` with backoff,
    or into a `PermanentFailure` on the last try; one log line at the start and one at the end."""
    name = coroutine.__name__

    @functools.wraps(coroutine)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        job_id, job_try = ctx["job_id"], ctx["job_try"]
        claims: ClaimKeeper | None = ctx.get("claims") if record else None
        stats = process_stats(ctx)
        stats["running"] += 1
        fields = {"job_id": job_id, "job_name": name, "job_try": job_try}
        logger.info("job started", extra=fields)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            # Held inside the try, so the finally always releases it: a claim left in the keeper would be renewed
            # for ever, even once another worker has taken the job over.
            if claims is not None:
                claims.hold(job_id)
            if record:
                await _record_start(ctx)
            return await coroutine(ctx, *args, **kwargs)
        except TransientFailure as e:
            if job_try >= max_tries:
                error = PermanentFailure(f"gave up after {job_try} tries: {e}")
                raise error from e
            await _record_retry(ctx, e)
            error = Retry(defer=backoff_s(job_try, job_settings(ctx).sleep_scale))
            raise error from e
        except BaseException as e:
            error = e
            raise
        finally:
            if claims is not None:
                claims.release(job_id)
            duration = round(time.perf_counter() - started, 6)
            outcome = _outcome(error)
            stats["running"] -= 1
            stats["done"] += 1
            if record:
                await asyncio.shield(record_outcome(ctx, name, outcome, duration))
            level = logging.WARNING if outcome == "failure" else logging.INFO
            extra = {
                **fields,
                "duration_s": duration,
                "outcome": outcome,
                "error": type(error).__name__ if error else None,
            }
            logger.log(level, "job ended", extra=extra)

    return run


def job_function(
    coroutine: JobCoroutine, *, max_tries: int = DEFAULT_MAX_TRIES, timeout_s: float | None = None
) -> Function:
    """Register `coroutine` with arq under its own name (the wire format of its jobs), instrumented."""
    return func(
        instrumented(coroutine, max_tries=max_tries), name=coroutine.__name__, max_tries=max_tries, timeout=timeout_s
    )


async def announce_end(ctx: dict[str, Any]) -> None:
    """arq's `after_job_end` hook (after the result or the retry is written): tell stream subscribers."""
    await job_redis(ctx).publish(keys.job_events(ctx["job_id"]), b"")
