"""What every job gets around its own code: its start recorded, and one log line at its start and its end."""

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry
from arq.utils import timestamp_ms
from arq.worker import Function, func

from .. import keys
from .context import job_redis

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


def job_function(coroutine: JobCoroutine, *, max_tries: int | None = None, timeout_s: float | None = None) -> Function:
    """Register `coroutine` with arq under its own name, wrapped with the bookkeeping every job needs."""
    name = coroutine.__name__

    @functools.wraps(coroutine)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        job_id, job_try = ctx["job_id"], ctx["job_try"]
        record = {"started_at": timestamp_ms(), "attempt": job_try}
        # redis-py types its commands as sync-or-async; on the asyncio client this is always awaitable.
        await job_redis(ctx).hset(keys.job_record(job_id), mapping=record)  # type: ignore[misc]
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

    return func(run, name=name, max_tries=max_tries, timeout=timeout_s)
