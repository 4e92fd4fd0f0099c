"""`ServiceWorker`: arq's `Worker` with this service's engine, and the one module that overrides arq.

What the subclass adds, with its state on `self` (nothing is patched at import, nothing of redis-py's private API
is used):
- **Claims in one round trip** (`take`): every due job it has room for, read and claimed by one script, instead of
  arq's WATCH/MULTI round trips per job. This is the one override of a method arq does not make public,
  `_poll_iteration`; `compat` pins the arq versions it was tested with and fingerprints the arq code it relies on.
- **Wake-ups instead of a fixed poll** (`wakeup`): between polls the worker waits for an enqueue's message (or a
  job of its own ending while it was full), at most `poll_delay`.
- **Short claims, renewed** (`claims`): a dead worker's jobs run again within CLAIM_TTL_S, not after arq's longest
  job timeout + 10 s.
- **Aborts by pub/sub** (`aborts`), with arq's own `job_tasks`/`aborting_tasks`, so arq records them as aborted.
- **A heartbeat per process** (`heartbeat`), counted metrics, batched bookkeeping (`batching`), and a health-check
  key that one worker stopping does not take away from the others (`close`).
- **Its own Redis pool** (`connections.worker_redis`) unless given one: every connect, handshake included, retried
  with back-off for ever, a timeout on every command, and through Sentinel the primary asked for at each try.
- **Webhooks queued with the result** (`_queue_webhook`): in the finish transaction of a job with a callback URL.
- **A span per try** when tracing is on (`runtime`, `service.core.tracing`).

`worker_settings.py` selects it with one line that binds arq's `Worker` name to it: arq's CLI builds `Worker` by
name, and has no other way to be told the class.
"""

import asyncio
import contextlib
import inspect
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import uvloop
from arq.connections import ArqRedis
from arq.constants import (
    abort_jobs_ss,
    health_check_key_suffix,
)
from arq.typing import SecondsTimedelta, StartupShutdown
from arq.utils import to_ms, to_seconds
from arq.worker import Worker
from redis.asyncio.client import Pipeline

from service.core import events, indexes, keys
from service.core.connections import check_sentinels, close_redis, sync_redis, uses_sentinel, worker_redis
from service.core.counters import MetricsBuffer
from service.core.enqueue import RECORD_MARGIN_S
from service.core.indexes import JobKeys
from service.core.record import Field
from service.core.serialization import job_deserializer
from service.core.status import ABORT_ERROR_TYPES
from service.core.tracing import Tracing
from service.core.webhooks import queue_webhook
from service.engine import compat, heartbeat, wakeup
from service.engine.aborts import Aborts
from service.engine.batching import CommandBatcher
from service.engine.claims import CLAIM_TTL_S, ClaimKeeper
from service.engine.runtime import ENGINE, Engine
from service.engine.take import Claimed, take
from service.settings import Settings, get_settings

logger = logging.getLogger(__name__)

# How long a starting worker waits for its wake-up and abort subscriptions before it takes jobs anyway.
SUBSCRIBE_WAIT_S = 5.0


class ServiceWorker(Worker):
    """arq's worker, with this service's engine. Takes every argument arq's `Worker` takes, plus `settings`,
    `worker_id` and `queues` (the queues it serves, in priority order); `poll_delay` is the longest wait between two
    looks at the queues (an enqueue wakes it at once, and it wakes by itself when a scheduled job is due)."""

    def __init__(
        self,
        functions: Sequence[Any] = (),
        *,
        settings: Settings | None = None,
        worker_id: str | None = None,
        queues: Sequence[str] = (keys.DEFAULT_QUEUE,),
        tracing: Tracing | None = None,
        poll_delay: SecondsTimedelta = 0.5,
        on_startup: StartupShutdown | None = None,
        on_shutdown: StartupShutdown | None = None,
        after_job_end: StartupShutdown | None = None,
        **kwargs: Any,
    ) -> None:
        compat.check_arq_version()  # before anything runs: never an outage at the first job
        if kwargs.pop("allow_abort_jobs", False):
            logger.info("allow_abort_jobs is not needed: this worker hears aborts through pub/sub")
        if not queues:
            raise ValueError("a worker serves at least one queue")
        # arq's own loop sleeps poll_delay between polls; this worker waits in `_poll_iteration` instead. arq's
        # `queue_name` is the first queue's (arq queues its cron jobs there); `arq --check` reads the default
        # queue's health key whichever queues a worker serves.
        kwargs.setdefault("health_check_key", keys.queue_key(keys.DEFAULT_QUEUE) + health_check_key_suffix)
        service_settings = settings or get_settings()
        if kwargs.get("redis_pool") is None:
            if uses_sentinel(service_settings):
                # Said now, in a line, rather than waited out for ever: no Sentinel answers, or none knows the name.
                logger.info("Redis primary, as the Sentinels name it: %s", check_sentinels(service_settings))
            # This service's pool rather than arq's: the same retries and timeouts through Sentinel (arq's Sentinel
            # pool drops them) and without, and a timeout on every command (`connections.worker_redis`).
            kwargs["redis_pool"] = worker_redis(service_settings)
        super().__init__(
            functions,
            queue_name=keys.queue_key(queues[0]),
            poll_delay=0,
            allow_abort_jobs=False,
            on_startup=self._startup,
            on_shutdown=self._shutdown,
            after_job_end=self._after_job_end,
            **kwargs,
        )
        self.settings = service_settings
        self.worker_id = worker_id or heartbeat.new_worker_id()
        # OTEL_EXPORTER_OTLP_ENDPOINT unset: None, and no job makes a span (`runtime`).
        self.tracing = tracing or Tracing.from_settings(self.settings, "worker")
        self.max_wait_s = to_seconds(poll_delay)
        self.queues = list(queues)
        self.queue_keys = [keys.queue_key(queue) for queue in queues]
        self._next_due_ms: int | None = None
        self._hooks = {"startup": on_startup, "shutdown": on_shutdown, "after_job_end": after_job_end}
        self.aborts = Aborts(self.job_tasks, self.aborting_tasks)
        self.stats: Counter[str] = Counter()  # jobs running and done, for the heartbeat
        self.metrics = MetricsBuffer()
        self.claims: ClaimKeeper | None = None
        self._batcher: CommandBatcher | None = None
        self._claimed: dict[str, Claimed] = {}
        self._failures: dict[str, str] = {}  # job id -> traceback, for the tries that end FAILURE
        self._wake = asyncio.Event()
        self._saturated = False  # the last look at the queue filled every free slot
        self._polled = False
        self._stop = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None
        self.ctx[ENGINE] = self  # how the job wrapper (`runtime`) finds this worker in arq's ctx

    # --- what the job wrapper asks of the worker ---------------------------------------------------------------

    @property
    def batcher(self) -> CommandBatcher:
        if self._batcher is None:
            self._batcher = CommandBatcher(self.pool)
        return self._batcher

    def claimed(self, job_id: str) -> Claimed | None:
        """What the take script did for `job_id` as it claimed it (None for a job claimed otherwise)."""
        return self._claimed.get(job_id)

    def abort_pending(self, job_id: str) -> bool:
        return self.aborts.pending(job_id)

    def send(self, commands: Callable[[Pipeline], object]) -> "asyncio.Future[list[Any]]":
        return self.batcher.send(commands)

    def try_started(self) -> None:
        self.stats["running"] += 1

    def queue_waited(self, name: str, waited_s: float) -> None:
        self.metrics.add_wait(name, waited_s)

    def try_ended(self, job_id: str, name: str, outcome: str, duration_s: float, traceback: str | None) -> None:
        self.stats["running"] -= 1
        self.stats["done"] += 1
        self.metrics.add(name, outcome, duration_s)
        if traceback is not None:  # the try ends FAILURE: arq's finish transaction keeps it (`finish_job`)
            self._failures[job_id] = traceback

    def wake(self) -> None:
        self._wake.set()

    # --- arq's hooks, around the user's own ---------------------------------------------------------------------

    async def _startup(self, ctx: dict[str, Any]) -> None:
        local = heartbeat.LocalBeat(self.settings.worker_check_dir, self.worker_id)
        local.touch()
        self.claims = ClaimKeeper(partial(sync_redis, self.settings), local.stalled_for, self.in_progress_timeout_s)
        self.claims.start()
        beats = heartbeat.beat_forever(self.pool, self.worker_id, self.stats, self.metrics, self._stop, self.queues)
        subscribed = asyncio.Event()
        self._listener = asyncio.create_task(
            wakeup.listen(self.pool, self._stop, self.wake, self.aborts.abort, subscribed), name="wakeup-listener"
        )
        self._loops = [
            asyncio.create_task(beats, name="heartbeat"),
            asyncio.create_task(local.run(self._stop), name="local-beat"),
            self._listener,
        ]
        # No job is claimed before aborts can be heard (an abort published earlier would reach no one). Bounded: a
        # worker that cannot subscribe still runs jobs, and the listener keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_WAIT_S)
        if hook := self._hooks["startup"]:
            await hook(ctx)

    async def _shutdown(self, ctx: dict[str, Any]) -> None:
        if hook := self._hooks["shutdown"]:
            await hook(ctx)
        await self._stop_loops()
        if self.claims is not None:
            await asyncio.to_thread(self.claims.stop)
        # Bookkeeping still in flight (a cancelled job's, say) ends before arq closes the pool under it.
        if self._batcher is not None:
            await self._batcher.drain()
        await self.metrics.flush(self.pool)
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)  # the last tries' spans go out before the process ends
        with contextlib.suppress(Exception):
            await heartbeat.forget(self.pool, self.worker_id)

    async def _stop_loops(self) -> None:
        """Stop the heartbeat and the listener. Told to stop rather than cancelled, so the last beat lands before
        `heartbeat.forget`; the listener is cancelled too (redis-py's cleanup can turn its cancellation into an
        error, and then the event still ends it within a tick). Either is cancelled if late (a Redis outage)."""
        self._stop.set()
        if self._listener is not None:
            self._listener.cancel()
        if not self._loops:
            return
        _, late = await asyncio.wait(self._loops, timeout=heartbeat.WORKER_HEARTBEAT_S)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1)

    async def _after_job_end(self, ctx: dict[str, Any]) -> None:
        """Announce the job's end (after arq wrote its result or its retry). Not awaited: the slot is free without
        waiting for the reply; a lost announcement delays a stream by its re-read, nothing more."""
        self.batcher.send(lambda pipe: events.announce(pipe, ctx["job_id"])).add_done_callback(_log_lost_announcement)
        if hook := self._hooks["after_job_end"]:
            await hook(ctx)

    # --- the override ---------------------------------------------------------------------------------------------

    async def _poll_iteration(self) -> None:
        """arq's `Worker._poll_iteration` (arq 0.28), with the wait for a wake-up before it, and `take` for its
        read of the queue and its claims (arq's `start_jobs`)."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # The worker was told to stop, but the CancelledError never reached its loop: Python 3.11's
            # asyncio.wait_for (which redis-py uses for its timeouts) drops it when the awaited operation completes
            # in the same turn (CPython gh-86296). Such a worker went on polling for ever after its SIGTERM.
            raise asyncio.CancelledError
        if self._polled and not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._wait_s()):
                    await self._wake.wait()
        self._polled = True
        # Cleared before the worker looks at the queue, so a job queued while it looks wakes it again.
        self._wake.clear()
        count = self.queue_read_limit
        if self.burst and self.max_burst_jobs >= 0:
            started = self.jobs_complete + self.jobs_retried + self.jobs_failed + len(self.tasks)
            if self.max_burst_jobs - started < 1:
                return
            count = min(self.max_burst_jobs - started, count)
        if self.allow_pick_jobs:
            await self._take_jobs(count)
        else:
            # Stopping (SIGTERM's grace period): no job to wait for. A due time kept from before would, once past,
            # make every wait zero: a busy loop until the running jobs end.
            self._next_due_ms = None
        for job_id, job_task in list(self.tasks.items()):
            if job_task.done():
                del self.tasks[job_id]
                job_task.result()  # as arq: an error in run_job itself ends the worker
        await self.heart_beat()

    def _wait_s(self) -> float:
        """Until the next scheduled job is due (as the last look at the queues saw it), at most `poll_delay`: an
        enqueue or a job's end wakes the worker before that, and the bound catches what no message announces (a
        retry's back-off ending, arq's cron jobs, a wake-up lost while the subscription was down)."""
        if self._next_due_ms is None:
            return self.max_wait_s
        return max(0.0, min(self.max_wait_s, (self._next_due_ms - time.time() * 1000) / 1000))

    async def _take_jobs(self, count: int) -> None:
        free = self.max_jobs - self.job_counter
        if free <= 0:
            self._next_due_ms = None  # full: nothing to take until a slot frees, and that wakes the worker
            return
        claimed, self._next_due_ms = await take(
            self.pool,
            self.queue_keys,
            count=count,
            free=free,
            claim_ms=int(self.in_progress_timeout_s * 1000),
            short_claim_ms=CLAIM_TTL_S * 1000,
            worker_id=self.worker_id,
        )
        # Every free slot taken: more due jobs may be waiting, so a job that ends must wake the worker (or they
        # would wait for poll_delay). Fewer: the queue had no more, and the next enqueue's wake-up will come.
        self._saturated = len(claimed) == free
        for job in claimed:
            self._claimed[job.job_id] = job
            self.aborts.starting(job.job_id)  # an abort from now on reaches the job, even before its wrapper runs
            if job.recorded and self.claims is not None:
                self.claims.hold(job.job_id)  # the take script set the short claim: renewed while the job runs
            self.job_counter += 1
            job_task = asyncio.create_task(self.run_job(job.job_id, job.score))
            job_task.add_done_callback(partial(self._job_done, job.job_id))
            self.tasks[job.job_id] = job_task

    def _job_done(self, job_id: str, _: "asyncio.Task[None]") -> None:
        self.job_counter -= 1
        if self.claims is not None:
            self.claims.release(job_id)  # after arq's finish_job deleted the claim: never renewed past the job
        self.aborts.forget(job_id)
        self._claimed.pop(job_id, None)
        # A worker whose last look filled every slot looks again (jobs may be waiting that it had no room for, and it
        # remains "full" through looks that found no free slot). One with room left already saw all that was due.
        if self._saturated:
            self._wake.set()

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """arq's `Worker.finish_job` (arq 0.28), on the queue the job was taken from rather than `queue_name`."""
        async with self.pool.pipeline(transaction=True) as tr:
            delete_keys = []
            job = JobKeys(job_id)
            in_progress_key = job.in_progress
            if keep_in_progress is None:
                delete_keys += [in_progress_key]
            else:
                tr.pexpire(in_progress_key, to_ms(keep_in_progress))
            queue = self._queue_of(job_id)
            traceback = self._failures.pop(job_id, "")
            if finish:
                # A timeout fails the job outside its own code (no traceback noted): the result says so too.
                failed_name = _failed_function(result_data)
                if result_data:
                    expire = None if keep_result_forever else result_timeout_s
                    if failed_name is not None:
                        expire = self.settings.failed_ttl
                    tr.set(job.result, result_data, px=to_ms(expire))
                if failed_name is not None:
                    self._keep_failure(tr, job_id, traceback)
                    self.metrics.add_failure(failed_name)
                delete_keys += [job.retry, job.definition]
                tr.zrem(abort_jobs_ss, job_id)
                tr.zrem(queue, job_id)
                self._queue_webhook(tr, job_id)
            elif incr_score:
                tr.zincrby(queue, incr_score, job_id)
            if delete_keys:
                tr.delete(*delete_keys)
            await tr.execute()

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """arq's `Worker.finish_failed_job` (arq 0.28), on the queue the job was taken from."""
        async with self.pool.pipeline(transaction=True) as tr:
            job = JobKeys(job_id)
            tr.delete(job.retry, job.in_progress, job.definition)
            tr.zrem(abort_jobs_ss, job_id)
            tr.zrem(self._queue_of(job_id), job_id)
            keep_result = self.keep_result_forever or self.keep_result_s > 0
            failed_name = _failed_function(result_data)
            if result_data is not None and keep_result:
                expire = 0 if self.keep_result_forever else self.keep_result_s
                tr.set(job.result, result_data, px=to_ms(self.settings.failed_ttl if failed_name else expire))
            if failed_name is not None:  # arq failed it without running it: unknown, unreadable, out of tries
                self._keep_failure(tr, job_id, "")
                self.metrics.add_failure(failed_name)
            self._queue_webhook(tr, job_id)
            await tr.execute()

    def _queue_webhook(self, tr: Any, job_id: str) -> None:
        """In the finish transaction of a job with a callback URL: queue its webhook's delivery, so that a job that
        ended never misses it (nor gets it before its result is there)."""
        claimed = self._claimed.get(job_id)
        if claimed is not None and claimed.callback_url is not None:
            queue_webhook(tr, job_id, claimed.callback_url, claimed.owner, self.settings.result_ttl)

    def _keep_failure(self, tr: Any, job_id: str, traceback: str) -> None:
        """In the finish transaction of a job that ended FAILURE: its record and its places in the failed-jobs
        indexes live for FAILED_TTL, however many jobs run after it."""
        ttl_s = self.settings.failed_ttl
        record = keys.job_record(job_id)
        if traceback:
            tr.hset(record, Field.TRACEBACK, traceback)
        tr.expire(record, ttl_s + RECORD_MARGIN_S)
        claimed = self._claimed.get(job_id)
        indexes.list_failure(tr, job_id, claimed.owner if claimed else None, time.time_ns() // 1000, ttl_s)

    def _queue_of(self, job_id: str) -> str:
        claimed = self._claimed.get(job_id)
        return claimed.queue_key if claimed is not None else self.queue_name

    async def close(self) -> None:
        # arq's close() deletes `health_check_key`, which every worker of the queue shares, and `arq --check` would
        # then fail for every remaining worker until its next record (up to health_check_interval). This worker's
        # close deletes a key of its own instead; the shared one expires by itself once no worker records it.
        self.health_check_key = f"{self.health_check_key}:{self.worker_id}"
        pool: ArqRedis | None = self.pool  # arq's property: None before main() made it
        await super().close()
        if pool is not None:
            await close_redis(pool)  # through Sentinel: the clients to the Sentinels, which arq's close leaves open


# arq's `get_kwargs` keeps the settings class's attributes that name a parameter of `inspect.signature(Worker)`:
# this one's are arq's own, plus `settings` and `worker_id`.
ServiceWorker.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        *inspect.signature(Worker).parameters.values(),
        inspect.Parameter("settings", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("worker_id", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("queues", inspect.Parameter.KEYWORD_ONLY, default=(keys.DEFAULT_QUEUE,)),
        inspect.Parameter("tracing", inspect.Parameter.KEYWORD_ONLY, default=None),
    ]
)


def _failed_function(result_data: bytes | None) -> str | None:
    """The function name of arq's result record if it is a FAILURE (not a success, nor an abort: REVOKED); None
    otherwise. An unreadable record is a failure of an unknown function."""
    if result_data is None:
        return None
    try:
        result = job_deserializer(result_data)
    except ValueError:
        return UNKNOWN_FUNCTION
    if not isinstance(result, dict):
        return UNKNOWN_FUNCTION
    if result.get("s"):
        return None
    error = result.get("r")
    if isinstance(error, dict) and error.get("type") in ABORT_ERROR_TYPES:
        return None
    return str(result.get("f") or UNKNOWN_FUNCTION)


UNKNOWN_FUNCTION = "<unknown>"  # arq's own name for a job whose definition it could not read


def _log_lost_announcement(future: "asyncio.Future[list[Any]]") -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        logger.warning("could not announce a job's end: %r", error)


def use_uvloop() -> None:
    """Run the worker on uvloop, as uvicorn runs the web app: arq takes the policy's loop when it starts."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _is_an_engine(worker: ServiceWorker) -> Engine:
    """Never called: mypy checks here that the worker is what the job wrapper asks for (`runtime.Engine`)."""
    return worker
