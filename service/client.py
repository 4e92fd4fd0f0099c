"""Queue and follow jobs from any Python process (another service, a script, a notebook) with only the Redis
settings: no web app in between.

    from service.client import Jobs, JobFailed

    async with Jobs() as jobs:                    # REDIS_URL / REDIS_SENTINELS from the environment, or Jobs(url)
        handle = await jobs.enqueue("send_notification", {"email": "ada@example.com"})
        result = await handle.result(timeout=10)  # waits for the job's end by push; JobFailed if it failed

A kind is named by its name, by its `Kind` (`jobs.enqueue(run_sleep_task, {"type": 0})`), or by an instance of its
arguments model (`jobs.enqueue(SleepTaskArgs(type=0))`). Arguments are validated against the kind's model before
anything is queued: pydantic's `ValidationError` if they do not fit.

Plain arq code can queue the same jobs: `arq.create_pool(..., job_serializer=job_serializer,
job_deserializer=job_deserializer)` then `await pool.enqueue_job("run_sleep_task", type=0)` (README, "From another
Python process").
"""

import asyncio
import contextlib
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import orjson
from arq.connections import ArqRedis
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.core.connections import client_redis, close_redis
from service.core.control import abort_job, retry_all, run_again
from service.core.enqueue import NewJob, enqueue_many
from service.core.events import RESYNC_AFTER_S, JobChanges
from service.core.exceptions import (
    IdempotencyKeyReused,
    JobNotFound,
    JobStateConflict,
    QuotaExceeded,
)
from service.core.reads import read_job, read_snapshot
from service.core.serialization import job_deserializer, job_serializer
from service.core.status import TERMINAL_STATUSES, Status
from service.core.views import JobView
from service.core.webhooks import Allowlist, CallbackRefused, check_callback
from service.kinds import Kind, Kinds, load_kinds
from service.kinds.declare import REGISTRY
from service.settings import Settings, get_settings

__all__ = [
    "CallbackRefused",
    "IdempotencyKeyReused",
    "JobFailed",
    "JobHandle",
    "JobNotFound",
    "JobStateConflict",
    "Jobs",
    "QuotaExceeded",
    "RedisUnavailable",
    "UnknownKind",
    "job_deserializer",
    "job_serializer",
]

# A kind as the caller names it: its name, its declaration, or an instance of its arguments model.
KindRef = str | Kind[Any, Any] | BaseModel
Args = Mapping[str, Any] | BaseModel | None
MAX_DELAY_S = 366 * 24 * 3600


class JobFailed(Exception):
    """The job ended FAILURE or REVOKED: `view` is its last view (`view.error` says why)."""

    def __init__(self, view: JobView) -> None:
        error = f": {view.error.type}: {view.error.message}" if view.error else ""
        super().__init__(f"job {view.id} ({view.name}) ended {view.status}{error}")
        self.view = view

    @property
    def status(self) -> Status:
        return self.view.status


class UnknownKind(LookupError):
    """No kind of that name is declared in this process (its module is not in JOB_KINDS), or it is one the service
    queues itself (a webhook's delivery)."""


class RedisUnavailable(ConnectionError):
    """Redis did not answer (refused, reset or timed out, a few tries over a few seconds). Nothing was queued unless
    the server had already run the command: an `enqueue` with an `idempotency_key` is safe to send again."""


@contextlib.contextmanager
def _redis_errors() -> Iterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as e:
        raise RedisUnavailable(f"Redis is unreachable: {e}") from e


class JobHandle:
    """A queued job: its `id`, and ways to follow it."""

    def __init__(self, jobs: "Jobs", job_id: str) -> None:
        self._jobs = jobs
        self.id = job_id

    def __repr__(self) -> str:
        return f"JobHandle({self.id!r})"

    async def view(self) -> JobView:
        """Everything `GET /jobs/{id}` shows; `JobNotFound` once it has expired."""
        with _redis_errors():
            return await read_job(self._jobs.redis, self.id)

    async def status(self) -> Status:
        return (await self.view()).status

    async def wait(self, timeout: float | None = None) -> JobView:  # noqa: ASYNC109  # the contract's signature
        """The job's view once it has ended (SUCCESS, FAILURE or REVOKED). Waits by push: the worker announces the
        end on the job's channel, which this client follows on one connection for all its handles. `TimeoutError`
        after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            with _redis_errors():
                async with self._jobs.changes.watch(self.id) as changed:
                    while True:
                        changed.clear()  # before the read: a change during it is seen by the next one
                        view = await read_job(self._jobs.redis, self.id)
                        if view.status in TERMINAL_STATUSES:
                            return view
                        # A few ends are announced by nobody (arq failing a job it cannot run): read again anyway.
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(changed.wait(), RESYNC_AFTER_S)

    async def result(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109  # the contract's signature
        """The job's return value (JSON values) once it succeeded; `JobFailed` if it ended FAILURE or REVOKED,
        `TimeoutError` after `timeout` seconds."""
        view = await self.wait(timeout)
        if view.status is not Status.SUCCESS:
            raise JobFailed(view)
        return view.result

    async def abort(self) -> Status:
        """Abort it: REVOKED at once if it was queued, STARTED until its worker cancels it if it runs."""
        return await self._jobs.abort(self.id)


class Jobs:
    """A connection to the service's Redis for producers: `async with Jobs() as jobs`.

    `url` is a Redis URL (`redis://host:port/db`); without one, the settings come from the environment as the
    workers read them (REDIS_URL, or REDIS_SENTINELS and REDIS_SENTINEL_MASTER). `settings` replaces both. The
    kinds known are the service's own and those of JOB_KINDS, plus any `Kind` passed in."""

    def __init__(self, url: str | None = None, *, settings: Settings | None = None) -> None:
        if settings is None:
            settings = get_settings() if url is None else Settings(redis_url=url)
        self.settings = settings
        self.kinds: Kinds = load_kinds(settings.job_kinds)
        self._redis: ArqRedis | None = None
        self._changes: JobChanges | None = None

    async def __aenter__(self) -> Self:
        self._redis = client_redis(self.settings)  # connects at its first command
        self._changes = JobChanges(self._redis)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._changes is not None:
            await self._changes.aclose()
        if self._redis is not None:
            await close_redis(self._redis)
        self._redis = self._changes = None

    @property
    def redis(self) -> ArqRedis:
        if self._redis is None:
            raise RuntimeError("use Jobs as `async with Jobs() as jobs:`")
        return self._redis

    @property
    def changes(self) -> JobChanges:
        if self._changes is None:
            raise RuntimeError("use Jobs as `async with Jobs() as jobs:`")
        return self._changes

    # --- queueing -----------------------------------------------------------------------------------------------

    def kind(self, ref: KindRef) -> Kind[Any, Any]:
        """The kind `ref` names; `UnknownKind` if there is none (or it is internal)."""
        if isinstance(ref, Kind):
            kind = ref
        elif isinstance(ref, BaseModel):
            found = [k for k in (*self.kinds.values(), *REGISTRY.values()) if k.args is type(ref)]
            if not found:
                raise UnknownKind(f"no job kind takes {type(ref).__name__} as its arguments")
            kind = found[0]
        elif (known := self.kinds.get(ref)) is not None:
            kind = known
        else:
            raise UnknownKind(
                f"no job kind named {ref!r} (known: {', '.join(sorted(self.kinds))}); a kind of your own must be "
                "in JOB_KINDS"
            )
        if kind.internal:
            raise UnknownKind(f"{kind.name} jobs are queued by the service itself")
        return kind

    def _new_job(
        self, ref: KindRef, args: Args, due_ms: int | None, callback_url: str | None, owner: str | None
    ) -> NewJob:
        kind = self.kind(ref)
        if isinstance(ref, BaseModel):
            args = ref if args is None else args
        if isinstance(args, BaseModel) and not isinstance(args, kind.args):
            raise TypeError(f"{kind.name} takes {kind.args.__name__}, not {type(args).__name__}")
        model = args if isinstance(args, BaseModel) else kind.args.model_validate(dict(args or {}))  # ValidationError
        if kind.owner_required and owner is None:
            raise ValueError(f"{kind.name} jobs belong to a user: pass owner=")
        kwargs = model.model_dump(mode="json")
        return NewJob(kind.name, kwargs, queue=kind.queue, run_at_ms=due_ms, callback_url=callback_url)

    async def enqueue(
        self,
        kind: KindRef,
        args: Args = None,
        *,
        delay_s: float | None = None,
        run_at: datetime | None = None,
        owner: str | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> JobHandle:
        """Queue one job, as `POST /jobs` would: due at once, after `delay_s`, or at `run_at`; owned by `owner` (who
        sees it, and whose quota it counts against); at most once per (owner, `idempotency_key`)."""
        (handle,) = await self.enqueue_many(
            [(kind, args)],
            delay_s=delay_s,
            run_at=run_at,
            owner=owner,
            idempotency_key=idempotency_key,
            callback_url=callback_url,
        )
        return handle

    async def enqueue_many(
        self,
        jobs: Iterable[tuple[KindRef, Args] | BaseModel],
        *,
        delay_s: float | None = None,
        run_at: datetime | None = None,
        owner: str | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> list[JobHandle]:
        """Queue many jobs in one round trip, all or none: each `(kind, args)` (or an arguments model alone) is
        validated first, then they are queued in one atomic step (`QuotaExceeded` for the lot if `owner` would pass
        MAX_ACTIVE_JOBS_PER_USER). Handles in the order given."""
        due_ms = _due_ms(delay_s, run_at)
        if callback_url is not None:
            await self._check_callback(callback_url)
        items = [(job, None) if isinstance(job, BaseModel) else job for job in jobs]
        new = [self._new_job(ref, args, due_ms, callback_url, owner) for ref, args in items]
        if not new:
            return []
        fingerprint = _fingerprint(new, delay_s, run_at) if idempotency_key is not None else ""
        with _redis_errors():
            queued = await enqueue_many(
                self.redis,
                new,
                record_ttl_s=self.settings.result_ttl,
                owner=owner,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                max_active=self.settings.max_active_jobs_per_user,
                replicas=self.settings.enqueue_replicas,
                wait_ms=self.settings.enqueue_wait_ms,
            )
        return [JobHandle(self, job_id) for job_id in queued.job_ids]

    async def _check_callback(self, url: str) -> None:
        if not self.settings.webhook_secret:
            raise CallbackRefused("webhooks are off: WEBHOOK_SECRET is not set")
        await check_callback(url, Allowlist.parse(self.settings.webhook_allowed_hosts))

    # --- following and control ----------------------------------------------------------------------------------

    def job(self, job_id: str) -> JobHandle:
        """A handle on a job queued elsewhere (by the web app, say)."""
        return JobHandle(self, job_id)

    async def abort(self, job_id: str) -> Status:
        """Abort a job (`POST /jobs/{id}/abort`): `JobNotFound`, or `JobStateConflict` if it has already ended."""
        with _redis_errors():
            snapshot = await read_snapshot(self.redis, job_id)
            return await abort_job(self.redis, snapshot, self.settings.result_ttl)

    async def retry(self, job_id: str) -> JobHandle:
        """Run a FAILURE or REVOKED job again as a new job (`POST /jobs/{id}/retry`); `JobStateConflict` otherwise."""
        with _redis_errors():
            snapshot = await read_snapshot(self.redis, job_id)
            new_id = await run_again(self.redis, snapshot, self.kinds.__contains__, self._submit)
        return JobHandle(self, new_id)

    async def retry_failed(self, kind: str | None = None, status: Status = Status.FAILURE) -> int:
        """Run again every FAILURE (or REVOKED) job, of `kind` or any, not run again already (`POST /jobs/retry`);
        how many."""
        with _redis_errors():
            return await retry_all(self.redis, status, self.kinds.__contains__, self._submit, kind)

    async def _submit(self, name: str, kwargs: dict[str, Any], *, owner: str | None, callback_url: str | None) -> str:
        job = NewJob(name, kwargs, queue=self.kinds[name].queue, callback_url=callback_url)
        queued = await enqueue_many(
            self.redis,
            [job],
            record_ttl_s=self.settings.result_ttl,
            owner=owner,
            max_active=self.settings.max_active_jobs_per_user,
        )
        return queued.job_id


def _due_ms(delay_s: float | None, run_at: datetime | None) -> int | None:
    if delay_s is not None and run_at is not None:
        raise ValueError("give delay_s or run_at, not both")
    if delay_s is not None:
        if not 0 <= delay_s <= MAX_DELAY_S:
            raise ValueError(f"delay_s must be between 0 and {MAX_DELAY_S}")
        return int((datetime.now(UTC) + timedelta(seconds=delay_s)).timestamp() * 1000)
    if run_at is not None:
        if run_at.tzinfo is None:
            raise ValueError("run_at needs a time zone (an aware datetime)")
        return int(run_at.timestamp() * 1000)
    return None


def _fingerprint(jobs: Sequence[NewJob], delay_s: float | None, run_at: datetime | None) -> str:
    """What makes two calls "the same" for an idempotency key: the kinds, arguments and timing as given."""
    request = [[job.function_name, job.kwargs, job.callback_url] for job in jobs]
    timing = [delay_s, run_at.isoformat() if run_at else None]
    return hashlib.sha256(orjson.dumps([request, timing], option=orjson.OPT_SORT_KEYS)).hexdigest()
