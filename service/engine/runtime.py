"""What every job of a declared kind gets around its own code, on any arq worker.

The arq function made from a kind (`arq_function`) validates the job's arguments against the kind's model, builds
the job's `JobContext`, records and announces the start (unless this service's worker did so as it claimed the
job), turns `TransientFailure` into arq's `Retry` with the kind's back-off, and logs one line at the end.

It is correct under a plain `arq.worker.Worker` too, without this service's worker (`ServiceWorker`): it then finds
no engine in arq's ctx, records the start itself, leaves arq's claim as arq set it, and counts no metrics. Such a
worker is slower (a poll every `poll_delay`, arq's claims and aborts), never wrong.
"""

import asyncio
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from arq import Retry
from arq.connections import ArqRedis
from arq.cron import CronJob, cron
from arq.utils import timestamp_ms
from arq.worker import Function, func
from pydantic import BaseModel, ValidationError
from redis.asyncio.client import Pipeline

from service.core import events, indexes, keys, tracing
from service.core.enqueue import RECORD_MARGIN_S
from service.core.failures import JobAborted, PermanentFailure, TransientFailure, public_error
from service.core.record import Field, try_error_field, try_field
from service.core.tracing import Tracing
from service.engine.take import Claimed
from service.kinds import JobContext, Kind, Kinds
from service.kinds.declare import Backoff
from service.kinds.schedule import parse_cron
from service.settings import Settings, get_settings

logger = logging.getLogger(__name__)

# The key of arq's ctx under which `ServiceWorker` puts itself: the one thing the wrapper reads from ctx besides
# arq's own job_id and job_try.
ENGINE = "fastapi_arq_jobs.engine"


class Engine(Protocol):
    """What the job wrapper asks of the worker that runs it (`ServiceWorker`; none on a plain arq worker): the seam
    between the two ends of a try, typed, so the wrapper reaches nothing else of the worker."""

    worker_id: str
    settings: Settings
    tracing: Tracing | None

    def claimed(self, job_id: str) -> Claimed | None:
        """What the take script did for the job as it claimed it (None for a job claimed otherwise)."""

    def abort_pending(self, job_id: str) -> bool:
        """Whether an abort of the job reached the worker before its code started."""

    def send(self, commands: Callable[[Pipeline], object]) -> Awaitable[list[Any]]:
        """Bookkeeping commands, batched with other jobs' into one round trip; their replies."""

    def try_started(self) -> None: ...

    def queue_waited(self, name: str, waited_s: float) -> None: ...

    def try_ended(self, job_id: str, name: str, outcome: str, duration_s: float, traceback: str | None) -> None:
        """Count the try; a FAILURE's traceback is kept with the job by the finish transaction."""


def backoff_s(backoff: Backoff, job_try: int, scale: float = 1.0) -> float:
    """Exponential back-off with "equal jitter": half the step is fixed, half random, so retries spread out; times
    RETRY_BACKOFF_SCALE (never SLEEP_SCALE, the demo kinds' knob)."""
    step = min(backoff.cap_s, backoff.base_s * 2.0 ** (job_try - 1))
    return (step / 2 + random.uniform(0, step / 2)) * scale


async def _record_start(
    job_id: str,
    attempt: int,
    redis: ArqRedis,
    engine: Engine | None,
    settings: Settings,
    name: str,
    enqueue_time: datetime | None,
) -> tuple[bool, str | None]:
    """Record and announce the start of a job the take script did not start; returns (abort requested, owner)."""
    record_key = keys.job_record(job_id)
    now_ms, worker = timestamp_ms(), engine.worker_id if engine else ""
    started = {
        Field.STARTED_AT: now_ms,
        Field.ATTEMPT: attempt,
        Field.WORKER: worker,
        try_field(attempt): f"{now_ms} {worker}",
    }

    def commands(pipe: Pipeline) -> None:
        pipe.hmget(record_key, [Field.ENQUEUED_AT, Field.ABORT_REQUESTED, Field.OWNER])
        pipe.hset(record_key, mapping=started)
        events.announce(pipe, job_id)

    if engine is not None:
        (enqueued_at, abort_requested, owner), _, _ = await engine.send(commands)
    else:
        async with redis.pipeline(transaction=False) as pipe:
            commands(pipe)
            (enqueued_at, abort_requested, owner), _, _ = await pipe.execute()
    if enqueued_at is None:
        # Queued by another client (arq's own enqueue_job, or arq queueing a scheduled kind's cron job): the record
        # was created just now. Give it what the enqueue script would have: its name, its enqueue time, a lifetime,
        # and a place in the all-jobs listing, so such a run is an ordinary job in `GET /jobs`.
        enqueued_ms = int(enqueue_time.timestamp() * 1000) if enqueue_time else timestamp_ms()
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hset(record_key, mapping={Field.NAME: name, Field.ENQUEUED_AT: enqueued_ms})
            pipe.expire(record_key, settings.result_ttl + RECORD_MARGIN_S)
            indexes.list_job(pipe, job_id, name, keys.DEFAULT_QUEUE, enqueued_ms * 1000)
            await pipe.execute()
    return abort_requested is not None, owner.decode() if owner else None


async def _record_retry(redis: ArqRedis, job_id: str, attempt: int, error: BaseException, traced: bool) -> None:
    error_info = public_error(error)
    record = {
        Field.ERROR_TYPE: error_info["type"],
        Field.ERROR_MESSAGE: error_info["message"],
        try_error_field(attempt): f"{error_info['type']}: {error_info['message']}",
    }
    if traced and (traceparent := tracing.current_traceparent()):
        record[Field.TRACE_LAST_TRY] = traceparent  # the next try's span links to this one
    await redis.hset(keys.job_record(job_id), mapping=record)  # type: ignore[misc]  # async client


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "success"
    if isinstance(exc, Retry):
        return "retry"
    if isinstance(exc, (asyncio.CancelledError, JobAborted)):
        return "cancelled"  # an abort is counted by the API, which knows of aborts before a start too
    return "failure"


def _arguments(kind: Kind[Any, Any], kwargs: dict[str, Any]) -> BaseModel:
    try:
        args: BaseModel = kind.args.model_validate(kwargs)
        return args
    except ValidationError as e:
        # Only the locations: the messages can quote the input, which a client's error must not show.
        where = ", ".join(".".join(str(p) for p in error["loc"]) or "(arguments)" for error in e.errors())
        raise PermanentFailure(f"the job's arguments do not fit {kind.name}: {where}") from None


def _plain(result: Any) -> Any:
    return result.model_dump(mode="json") if isinstance(result, BaseModel) else result


class _Run:
    """One try of one job: the steps around the kind's coroutine."""

    def __init__(self, kind: Kind[Any, Any], ctx: dict[str, Any]) -> None:
        self.kind = kind
        self.engine: Engine | None = ctx.get(ENGINE)
        self.settings = self.engine.settings if self.engine else get_settings()
        self.redis = ctx["redis"]
        self.job_id: str = ctx["job_id"]
        self.attempt: int = ctx["job_try"]
        self.enqueue_time: datetime | None = ctx.get("enqueue_time")
        self.due_ms: int = ctx.get("score") or 0  # the job's score in its queue: when it was due
        self.tracing: Tracing | None = self.engine.tracing if self.engine else None

    async def start(self) -> JobContext:
        """Record the start (unless the take script did) and build the job's context; raise `JobAborted` if an
        abort came first."""
        claimed = self.engine.claimed(self.job_id) if self.engine else None
        if claimed is not None and claimed.recorded:
            aborted, owner = claimed.abort_requested, claimed.owner
        else:
            aborted, owner = await _record_start(
                self.job_id, self.attempt, self.redis, self.engine, self.settings, self.kind.name, self.enqueue_time
            )
        if self.engine is not None and self.engine.abort_pending(self.job_id):
            aborted = True
        if aborted:
            raise JobAborted("the job was aborted before it started")
        if self.engine is not None and self.due_ms:
            self.engine.queue_waited(self.kind.name, self.waited_s())
        return JobContext(self.job_id, self.attempt, self.settings, self.redis, owner=owner, name=self.kind.name)

    def waited_s(self) -> float:
        """How long this try waited in its queue, from when it was due until now."""
        return max(0, timestamp_ms() - self.due_ms) / 1000 if self.due_ms else 0.0

    async def translate(self, exc: BaseException) -> BaseException:
        """What a job's exception becomes for arq: a `TransientFailure` arq's `Retry` with back-off (or a
        `PermanentFailure` on the last try); anything else stays as it is (arq records an abort's cancellation
        as aborted, and puts the job of a worker shutting down back in the queue)."""
        if not isinstance(exc, TransientFailure):
            return exc
        if self.attempt >= self.kind.max_tries:
            return PermanentFailure(f"gave up after {self.attempt} tries: {exc}")
        await _record_retry(self.redis, self.job_id, self.attempt, exc, self.tracing is not None)
        return Retry(defer=backoff_s(self.kind.backoff, self.attempt, self.settings.retry_backoff_scale))

    def finish(self, error: BaseException | None, duration_s: float) -> None:
        outcome = _outcome(error)
        if self.engine is not None:
            failed = outcome == "failure" and error is not None
            trace = "".join(traceback.format_exception(error)) if failed and error is not None else None
            self.engine.try_ended(self.job_id, self.kind.name, outcome, duration_s, trace)
        level = logging.WARNING if outcome == "failure" else logging.INFO
        fields = {"job_id": self.job_id, "job_name": self.kind.name, "job_try": self.attempt}
        extra = {
            **fields,
            "duration_s": duration_s,
            "outcome": outcome,
            "error": type(error).__name__ if error else None,
        }
        logger.log(level, "job ended", extra=extra)


async def _attempt(kind: Kind[Any, Any], job_run: _Run, kwargs: dict[str, Any]) -> Any:
    if job_run.engine is not None:
        job_run.engine.try_started()
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        job = await job_run.start()
        return _plain(await kind.run(job, _arguments(kind, kwargs)))
    except BaseException as e:
        error = await job_run.translate(e)
        if error is e:
            raise
        raise error from e
    finally:
        job_run.finish(error, round(time.perf_counter() - started, 6))


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw else None


async def _traced_attempt(kind: Kind[Any, Any], job_run: _Run, kwargs: dict[str, Any], traced: Tracing) -> Any:
    """The try in its span: a child of the job's enqueue span, linked to the previous try's."""
    record_key = keys.job_record(job_run.job_id)
    traceparent, previous = await job_run.redis.hmget(record_key, [Field.TRACEPARENT, Field.TRACE_LAST_TRY])
    attributes = {
        "job.id": job_run.job_id,
        "job.kind": kind.name,
        "job.queue": kind.queue,
        "job.try": job_run.attempt,
        "job.queue_wait_s": job_run.waited_s(),
        "messaging.system": "arq",
        "messaging.message.id": job_run.job_id,
    }
    with traced.try_span(kind.name, attributes, _text(traceparent), _text(previous)) as span:
        try:
            result = await _attempt(kind, job_run, kwargs)
        except BaseException as e:
            outcome = _outcome(e)
            span.set_attribute("job.outcome", outcome)
            if isinstance(e, Retry):
                span.add_event("retry", {"job.retry_in_s": (e.defer_score or 0) / 1000})
            elif outcome == "failure":
                span.record_exception(e)
                span.set_status(tracing.error_status(public_error(e)["message"]))
            raise
        span.set_attribute("job.outcome", "success")
        return result


def _wrap(kind: Kind[Any, Any]) -> Any:
    async def run(ctx: dict[str, Any], **kwargs: Any) -> Any:
        job_run = _Run(kind, ctx)
        if job_run.tracing is None:
            return await _attempt(kind, job_run, kwargs)
        return await _traced_attempt(kind, job_run, kwargs, job_run.tracing)

    run.__name__ = run.__qualname__ = kind.name
    return run


def arq_function(kind: Kind[Any, Any]) -> Function:
    """The arq function of `kind`: registered under the kind's name (the wire format of its jobs)."""
    return func(_wrap(kind), name=kind.name, max_tries=kind.max_tries, timeout=kind.timeout_s)


def functions(kinds: Kinds) -> list[Function]:
    """The arq functions of the kinds that are enqueued (a scheduled kind is arq's cron job instead)."""
    return [arq_function(kind) for kind in kinds.values() if kind.schedule is None]


def scheduled(kinds: Kinds) -> list[CronJob]:
    """arq cron jobs for the kinds with a `schedule`: `unique`, so one worker of many runs each tick."""
    return [
        # keep_result=None: the worker's own (arq's default for a cron job, 0, would drop each run from the listing).
        cron(
            _wrap(kind),
            name=kind.name,
            unique=True,
            timeout=kind.timeout_s,
            keep_result=None,
            **parse_cron(kind.schedule),
        )
        for kind in kinds.values()
        if kind.schedule is not None
    ]
