"""Jobs of every kind: listing, introspection, a live event stream, abort and retry."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from fastapi.sse import EventSourceResponse

from service.core import keys
from service.core.enqueue import abort
from service.core.events import job_events
from service.core.exceptions import JobNotFound, JobStateConflict
from service.core.reads import check_visible, list_jobs, read_snapshot, read_visible_job
from service.core.status import TERMINAL_STATUSES, Status
from service.core.views import JobView
from service.web.api.common import SubmitDep
from service.web.deps import ArqDep, CallerDep, CurrentUser, JobId, KindsDep, OptionalUser, SettingsDep
from service.web.metrics import count_abort
from service.web.schemas import ErrorDetailOut, JobListOut, JobStatusOut, TaskCreatedOut

router = APIRouter(
    prefix="/jobs", tags=["jobs"], responses={403: {"model": ErrorDetailOut}, 404: {"model": ErrorDetailOut}}
)
RETRYABLE = frozenset({Status.FAILURE, Status.REVOKED})


async def visible_job(job_id: JobId, caller: CallerDep) -> JobView:
    # A dependency, so that 403/404 are answered before a stream starts.
    return await read_visible_job(caller.arq, job_id, caller.user)


VisibleJob = Annotated[JobView, Depends(visible_job)]


@router.get("", responses={401: {"model": ErrorDetailOut}})
async def read_jobs(
    user: CurrentUser,
    arq: ArqDep,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=100, description="jobs per page: 1 to 100; anything else is a 422")] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobListOut:
    """Jobs newest first, optionally of one status: your own, or everybody's for an admin. Pass `next` back as
    `cursor` for the following page; `next` is null at the end."""
    index = keys.ALL_JOBS_INDEX if user.admin else keys.user_jobs_index(user.id)
    items, next_cursor = await list_jobs(arq, index, status=status, limit=limit, cursor=cursor)
    return JobListOut(items=items, next=next_cursor)


@router.get("/{job_id}")
async def read_job_view(job: VisibleJob) -> JobView:
    """Everything known about a job: status (STARTED while it runs), times, attempt, progress, result or error.
    A job with an owner is visible to that user and to admins only."""
    return job


@router.get("/{job_id}/events", response_class=EventSourceResponse)
async def stream_job_events(job: VisibleJob, arq: ArqDep) -> AsyncIterator[JobView]:
    """Server-Sent Events: the job's view at once, then one per change of status or progress, pushed by the
    workers; the stream ends after a terminal status."""
    async for view in job_events(arq, job.id, first=job):
        yield view


@router.post("/{job_id}/abort", status_code=status.HTTP_202_ACCEPTED, responses={409: {"model": ErrorDetailOut}})
async def abort_job(job_id: JobId, arq: ArqDep, user: OptionalUser, settings: SettingsDep) -> JobStatusOut:
    """Abort a job: a queued one never runs (REVOKED at once); a running one is cancelled within about a second.
    409 if it has already finished."""
    snapshot = await read_snapshot(arq, job_id)
    check_visible(snapshot.view, user)
    if snapshot.view.status in TERMINAL_STATUSES:
        raise JobStateConflict(f"the job has already finished ({snapshot.view.status})")
    view = snapshot.view
    outcome = await abort(
        arq, job_id, snapshot.function, snapshot.kwargs, snapshot.enqueued_ms, settings.result_ttl, queue=view.queue
    )
    if outcome == "terminal":
        raise JobStateConflict("the job finished before it could be aborted")
    if outcome == "missing":
        raise JobNotFound(f"no job with id {job_id!r}")
    await count_abort(arq, snapshot.function)
    # Revoked here and now, or still running until its worker cancels it (within about a second).
    return JobStatusOut(id=job_id, status=Status.REVOKED if outcome == "revoked" else Status.STARTED)


@router.post("/{job_id}/retry", status_code=status.HTTP_201_CREATED, responses={409: {"model": ErrorDetailOut}})
async def retry_job(
    job_id: JobId, arq: ArqDep, user: OptionalUser, submit: SubmitDep, kinds: KindsDep
) -> TaskCreatedOut:
    """Run a FAILURE or REVOKED job again, as a new job with the same arguments and owner."""
    snapshot = await read_snapshot(arq, job_id)
    check_visible(snapshot.view, user)
    if snapshot.view.status not in RETRYABLE:
        raise JobStateConflict(f"only FAILURE or REVOKED jobs can be retried, not {snapshot.view.status}")
    kind = kinds.get(snapshot.function)
    if kind is None:
        raise JobStateConflict("this job's kind is unknown; it cannot run again")
    return TaskCreatedOut(task_id=await submit(kind, snapshot.kwargs, owner=snapshot.view.owner))
