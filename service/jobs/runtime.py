"""What every job gets around its own code: its start recorded, and one log line at its start and its end."""

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry
from arq.typing import WorkerCoroutine
from arq.utils import timestamp_ms
from arq.worker import Function, func

from .. import keys
from .context import job_redis, job_settings

logger = logging.getLogger(__name__)

JobCoroutine = Callable[..., Awaitable[Any]]


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "success"
    if isinstance(exc, Retry):
        return "retry"
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return "failure"


# A record touched at start lives at least this long past the result (arq's job_timeout is 300 s).
RECORD_MARGIN_S = 600


async def _record_start(ctx: dict[str, Any]) -> None:
    record_key = keys.job_record(ctx["job_id"])
    async with job_redis(ctx).pipeline(transaction=True) as pipe:
        pipe.hset(record_key, mapping={"started_at": timestamp_ms(), "attempt": ctx["job_try"]})
        pipe.expire(record_key, job_settings(ctx).result_ttl + RECORD_MARGIN_S)
        await pipe.execute()


def instrumented(coroutine: JobCoroutine, *, record: bool = True) -> WorkerCoroutine:
    """Wrap `coroutine` with the bookkeeping every job needs: its start recorded (unless `record` is False, as
    for cron jobs, which have no record), and one log line at its start and one at its end."""
    name = coroutine.__name__

    @functools.wraps(coroutine)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        job_id, job_try = ctx["job_id"], ctx["job_try"]
        if record:
            await _record_start(ctx)
        fields = {"job_id": job_id, "job_name": name, "job_try": job_try}
        logger.info("job started", extra=fields)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await coroutine(ctx, *args, **kwargs)
        except BaseException as e:
            error = e
            raise
        finally:
            duration = round(time.perf_counter() - started, 6)
            outcome = _outcome(error)
            level = logging.WARNING if outcome == "failure" else logging.INFO
            error_type = type(error).__name__ if error else None
            logger.log(
                level, "job ended", extra={**fields, "duration_s": duration, "outcome": outcome, "error": error_type}
            )

    return run


def job_function(coroutine: JobCoroutine, *, max_tries: int | None = None, timeout_s: float | None = None) -> Function:
    """Register `coroutine` with arq under its own name (the wire format of its jobs), instrumented."""
    return func(instrumented(coroutine), name=coroutine.__name__, max_tries=max_tries, timeout=timeout_s)
