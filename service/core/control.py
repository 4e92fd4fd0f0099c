"""Job control: abort a job, run a finished one again, or every failed one. The web app, the Python client and the
command line all act through here, so an abort or a retry does the same wherever it comes from."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from arq.connections import ArqRedis

from service.core import keys
from service.core.enqueue import abort
from service.core.exceptions import JobNotFound, JobStateConflict
from service.core.reads import Snapshot, forget_job, iterate_snapshots
from service.core.record import Field
from service.core.status import TERMINAL_STATUSES, Status
from service.core.webhooks import queue_webhook
from service.kinds import Kinds
from service.settings import Settings

RETRYABLE = frozenset({Status.FAILURE, Status.REVOKED})


class Submit(Protocol):
    """Queues a job of the named kind with these arguments for `owner`; returns its id. The web app's adds the
    request's quota, Idempotency-Key and trace; the client's its own."""

    def __call__(
        self, name: str, kwargs: dict[str, Any], *, owner: str | None, callback_url: str | None
    ) -> Awaitable[str]: ...


async def abort_job(redis: ArqRedis, snapshot: Snapshot, result_ttl_s: int) -> Status:
    """Abort the job: a queued one is REVOKED here and now (and its webhook queued), a running one is cancelled by
    its worker within about a second (STARTED until then). `JobStateConflict` if it has already finished."""
    view = snapshot.view
    if view.status in TERMINAL_STATUSES:
        raise JobStateConflict(f"the job has already finished ({view.status})")
    outcome = await abort(
        redis, view.id, snapshot.function, snapshot.kwargs, snapshot.enqueued_ms, result_ttl_s, queue=view.queue
    )
    if outcome == "terminal":
        raise JobStateConflict("the job finished before it could be aborted")
    if outcome == "missing":
        raise JobNotFound(f"no job with id {view.id!r}")
    async with redis.pipeline(transaction=True) as tr:
        tr.hincrby(keys.METRICS_OUTCOMES, f"{snapshot.function}|aborted", 1)
        if outcome == "revoked" and snapshot.callback_url is not None:  # a worker queues the others as it ends them
            queue_webhook(tr, view.id, snapshot.callback_url, view.owner, result_ttl_s)
        await tr.execute()
    return Status.REVOKED if outcome == "revoked" else Status.STARTED


async def delete_job(redis: ArqRedis, snapshot: Snapshot, kinds: Kinds, settings: Settings) -> None:
    """Forget a finished job: its result, record and listing entries, and what its kind keeps besides
    (`Kind.on_delete`: a report's file). `JobStateConflict` while it is pending or running."""
    view = snapshot.view
    if view.status not in TERMINAL_STATUSES:
        raise JobStateConflict(f"only a finished job can be deleted, not a {view.status} one")
    await forget_job(redis, view)
    kind = kinds.get(view.name)
    if kind is not None and kind.on_delete is not None:
        await kind.on_delete(settings, view.id, view.owner)


async def run_again(redis: ArqRedis, snapshot: Snapshot, known: Callable[[str], bool], submit: Submit) -> str:
    """A new job of the same kind, arguments, owner and callback; the old one remembers it (`retried_as`).
    `JobStateConflict` unless the job ended FAILURE or REVOKED, or if no kind of that name is known here."""
    if snapshot.view.status not in RETRYABLE:
        raise JobStateConflict(f"only FAILURE or REVOKED jobs can be retried, not {snapshot.view.status}")
    if not known(snapshot.function):
        raise JobStateConflict("this job's kind is unknown; it cannot run again")
    new_id = await submit(
        snapshot.function, snapshot.kwargs, owner=snapshot.view.owner, callback_url=snapshot.callback_url
    )
    await redis.hset(keys.job_record(snapshot.view.id), Field.RETRIED_AS, new_id)  # type: ignore[misc]  # async client
    return new_id


async def retryable(redis: ArqRedis, status: Status, name: str | None = None) -> AsyncIterator[Snapshot]:
    """Every FAILURE (kept for FAILED_TTL) or REVOKED job, of kind `name` or any, that was not run again already."""
    index = keys.FAILED_INDEX if status is Status.FAILURE else keys.ALL_JOBS_INDEX
    async for snapshot in iterate_snapshots(redis, index):
        view = snapshot.view
        if view.status is status and not snapshot.retried_as and (name is None or view.name == name):
            yield snapshot


async def retry_all(
    redis: ArqRedis, status: Status, known: Callable[[str], bool], submit: Submit, name: str | None = None
) -> int:
    """Run again every job `retryable` finds whose kind is known here; how many."""
    retried = 0
    async for snapshot in retryable(redis, status, name):
        if known(snapshot.function):
            await run_again(redis, snapshot, known, submit)
            retried += 1
    return retried
