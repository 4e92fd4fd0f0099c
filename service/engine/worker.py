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

Select it with `arq.worker.Worker = ServiceWorker` in the settings module (`worker_settings.py`): arq's CLI builds
`Worker` by name, and has no other way to be told the class.
"""

import asyncio
import contextlib
import inspect
import logging
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import Any

import uvloop
from arq.typing import SecondsTimedelta, StartupShutdown
from arq.utils import to_seconds
from arq.worker import Worker

from service.core import events
from service.core.counters import MetricsBuffer
from service.engine import compat, heartbeat, wakeup
from service.engine.aborts import Aborts
from service.engine.batching import CommandBatcher
from service.engine.claims import CLAIM_TTL_S, ClaimKeeper
from service.engine.runtime import ENGINE
from service.engine.take import Claimed, take
from service.settings import Settings, get_settings

logger = logging.getLogger(__name__)

# How long a starting worker waits for its wake-up and abort subscriptions before it takes jobs anyway.
SUBSCRIBE_WAIT_S = 5.0


class ServiceWorker(Worker):
    """arq's worker, with this service's engine. Takes every argument arq's `Worker` takes, plus `settings` and
    `worker_id`; `poll_delay` is the longest wait between two looks at the queue (enqueues wake it at once)."""

    def __init__(
        self,
        functions: Sequence[Any] = (),
        *,
        settings: Settings | None = None,
        worker_id: str | None = None,
        poll_delay: SecondsTimedelta = 0.5,
        on_startup: StartupShutdown | None = None,
        on_shutdown: StartupShutdown | None = None,
        after_job_end: StartupShutdown | None = None,
        **kwargs: Any,
    ) -> None:
        compat.check_arq_version()  # before anything runs: never an outage at the first job
        if kwargs.pop("allow_abort_jobs", False):
            logger.info("allow_abort_jobs is not needed: this worker hears aborts through pub/sub")
        # arq's own loop sleeps poll_delay between polls; this worker waits in `_poll_iteration` instead.
        super().__init__(
            functions,
            poll_delay=0,
            allow_abort_jobs=False,
            on_startup=self._startup,
            on_shutdown=self._shutdown,
            after_job_end=self._after_job_end,
            **kwargs,
        )
        self.settings = settings or get_settings()
        self.worker_id = worker_id or heartbeat.new_worker_id()
        self.max_wait_s = to_seconds(poll_delay)
        self._hooks = {"startup": on_startup, "shutdown": on_shutdown, "after_job_end": after_job_end}
        self.aborts = Aborts(self.job_tasks, self.aborting_tasks)
        self.stats: Counter[str] = Counter()  # jobs running and done, for the heartbeat
        self.metrics = MetricsBuffer()
        self.claims: ClaimKeeper | None = None
        self._batcher: CommandBatcher | None = None
        self._claimed: dict[str, Claimed] = {}
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

    def count(self, name: str, outcome: str, duration_s: float) -> None:
        self.metrics.add(name, outcome, duration_s)

    def wake(self) -> None:
        self._wake.set()

    # --- arq's hooks, around the user's own ---------------------------------------------------------------------

    async def _startup(self, ctx: dict[str, Any]) -> None:
        local = heartbeat.LocalBeat(self.settings.worker_check_dir, self.worker_id)
        local.touch()
        self.claims = ClaimKeeper(self.settings.redis_url, local.stalled_for, self.in_progress_timeout_s)
        self.claims.start()
        beats = heartbeat.beat_forever(self.pool, self.worker_id, self.stats, self.metrics, self._stop)
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
                async with asyncio.timeout(self.max_wait_s):
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
        for job_id, job_task in list(self.tasks.items()):
            if job_task.done():
                del self.tasks[job_id]
                job_task.result()  # as arq: an error in run_job itself ends the worker
        await self.heart_beat()

    async def _take_jobs(self, count: int) -> None:
        free = self.max_jobs - self.job_counter
        if free <= 0:
            return
        claimed = await take(
            self.pool,
            self.queue_name,
            offset=0,
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
        # A full worker looks again; an idle one too (a look while its last jobs were ending may have found no slot).
        if self._saturated or self.job_counter == 0:
            self._wake.set()

    async def close(self) -> None:
        # arq's close() deletes `health_check_key`, which every worker of the queue shares, and `arq --check` would
        # then fail for every remaining worker until its next record (up to health_check_interval). This worker's
        # close deletes a key of its own instead; the shared one expires by itself once no worker records it.
        self.health_check_key = f"{self.health_check_key}:{self.worker_id}"
        await super().close()


# arq's `get_kwargs` keeps the settings class's attributes that name a parameter of `inspect.signature(Worker)`:
# this one's are arq's own, plus `settings` and `worker_id`.
ServiceWorker.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        *inspect.signature(Worker).parameters.values(),
        inspect.Parameter("settings", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("worker_id", inspect.Parameter.KEYWORD_ONLY, default=None),
    ]
)


def _log_lost_announcement(future: "asyncio.Future[list[Any]]") -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        logger.warning("could not announce a job's end: %r", error)


def use_uvloop() -> None:
    """Run the worker on uvloop, as uvicorn runs the web app: arq takes the policy's loop when it starts."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
