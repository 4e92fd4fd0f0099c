"""Jobs of every kind: listing, introspection, a live event stream, abort and retry."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.sse import EventSourceResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from service.core.control import Submit, abort_job, delete_job, retry_all, run_again
from service.core.events import job_events
from service.core.exceptions import NotAuthenticated, NotOwner
from service.core.indexes import JobFilter, index_for
from service.core.reads import (
    check_visible,
    find_by_prefix,
    list_jobs,
    read_snapshot,
    read_visible_job,
)
from service.core.status import Status
from service.core.views import JobView
from service.kinds import Kinds
from service.web.api.common import SubmitDep, Submitter
from service.web.deps import ArqDep, CallerDep, CurrentUser, JobId, KindsDep, OptionalUser, SettingsDep
from service.web.schemas import ErrorDetailOut, JobListOut, JobStatusOut, TaskCreatedOut

router = APIRouter(
    prefix="/jobs", tags=["jobs"], responses={403: {"model": ErrorDetailOut}, 404: {"model": ErrorDetailOut}}
)


async def visible_job(job_id: JobId, caller: CallerDep) -> JobView:
    # A dependency, so that 403/404 are answered before a stream starts.
    return await read_visible_job(caller.arq, job_id, caller.user)


VisibleJob = Annotated[JobView, Depends(visible_job)]


def _micros(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp() * 1_000_000)


@router.get("", responses={401: {"model": ErrorDetailOut}})
async def read_jobs(
    user: CurrentUser,
    arq: ArqDep,
    status: Status | None = None,
    name: Annotated[str | None, Query(max_length=64, description="jobs of this kind only")] = None,
    queue: Annotated[str | None, Query(max_length=32, description="jobs of this queue only")] = None,
    owner: Annotated[
        str | None, Query(max_length=64, description="this user's jobs only (admins; a user may name only themself)")
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="enqueued at or after (FAILURE: failed at or after)")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="enqueued at or before (FAILURE: failed at or before)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="jobs per page: 1 to 100; anything else is a 422")] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobListOut:
    """Jobs newest first, filtered on the server: your own, or everybody's for an admin. Pass `next` back as
    `cursor` for the following page (with the same filters); `next` is null at the end. One filter of status
    FAILURE, owner, kind or queue reads its own index; more are checked job by job, and a page may then come short,
    with a `next` to go on from."""
    if not user.admin:
        if owner is not None and owner != user.id:
            raise NotOwner("only an admin may list another user's jobs")
        owner = user.id
    where = JobFilter(status, name, queue, owner, _micros(since), _micros(until))
    items, next_cursor = await list_jobs(arq, index_for(where), limit=limit, cursor=cursor, where=where)
    return JobListOut(items=items, next=next_cursor)


@router.get("/search", responses={401: {"model": ErrorDetailOut}})
async def search_jobs(
    user: CurrentUser,
    arq: ArqDep,
    q: Annotated[
        str,
        Query(
            min_length=4,
            max_length=128,
            pattern="^[A-Za-z0-9_.:-]+$",
            description="an id or its first characters (4 or more)",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> JobListOut:
    """The jobs whose id starts with `q`: a pasted id, or the 8 characters the lists show. A user finds only their
    own."""
    found = await find_by_prefix(arq, q, limit if user.admin else 50)
    visible = [view for view in found if user.may_see(view.owner)]
    return JobListOut(items=visible[:limit], next=None)


@router.get("/{job_id}")
async def read_job_view(job_id: JobId, caller: CallerDep) -> JobView:
    """Everything known about a job: status (STARTED while it runs), times, attempt, progress, result or error.
    A job with an owner is visible to that user and to admins only; its `args` to them alone (an ownerless job's
    to admins), and a failure's `error.traceback` to admins alone."""
    snapshot = await read_snapshot(caller.arq, job_id)
    check_visible(snapshot.view, caller.user)
    return snapshot.detail(caller.user)


@router.get("/{job_id}/events", response_class=EventSourceResponse)
async def stream_job_events(job: VisibleJob, arq: ArqDep) -> AsyncIterator[JobView]:
    """Server-Sent Events: the job's view at once, then one per change of status or progress, pushed by the
    workers; the stream ends after a terminal status."""
    async for view in job_events(arq, job.id, first=job):
        yield view


@router.post("/{job_id}/abort", status_code=status.HTTP_202_ACCEPTED, responses={409: {"model": ErrorDetailOut}})
async def abort_job_route(job_id: JobId, arq: ArqDep, user: OptionalUser, settings: SettingsDep) -> JobStatusOut:
    """Abort a job: a queued one never runs (REVOKED at once); a running one is cancelled within about a second.
    409 if it has already finished."""
    snapshot = await read_snapshot(arq, job_id)
    check_visible(snapshot.view, user)
    # Revoked here and now, or still running until its worker cancels it (within about a second).
    return JobStatusOut(id=job_id, status=await abort_job(arq, snapshot, settings.result_ttl))


def _submit_kind(submit: Submitter, kinds: Kinds) -> Submit:
    """`control`'s way to queue a job again, through this request's submitter (its quota, key and trace)."""

    async def queue(name: str, kwargs: dict[str, Any], *, owner: str | None, callback_url: str | None) -> str:
        return await submit(kinds[name], kwargs, owner=owner, callback_url=callback_url)

    return queue


@router.post("/{job_id}/retry", status_code=status.HTTP_201_CREATED, responses={409: {"model": ErrorDetailOut}})
async def retry_job(
    job_id: JobId, arq: ArqDep, user: OptionalUser, submit: SubmitDep, kinds: KindsDep
) -> TaskCreatedOut:
    """Run a FAILURE or REVOKED job again, as a new job with the same arguments and owner."""
    snapshot = await read_snapshot(arq, job_id)
    check_visible(snapshot.view, user)
    return TaskCreatedOut(task_id=await run_again(arq, snapshot, kinds.__contains__, _submit_kind(submit, kinds)))


class BulkRetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal[Status.FAILURE, Status.REVOKED]
    name: str | None = Field(default=None, description="only jobs of this kind")


class BulkRetryOut(BaseModel):
    retried: int


bulk_router = APIRouter(prefix="/jobs", tags=["jobs"], responses={403: {"model": ErrorDetailOut}})


@bulk_router.post("/retry", status_code=status.HTTP_202_ACCEPTED, responses={401: {"model": ErrorDetailOut}})
async def retry_jobs(
    body: BulkRetryIn, user: CurrentUser, arq: ArqDep, submit: SubmitDep, kinds: KindsDep
) -> BulkRetryOut:
    """Run again every FAILURE (kept for FAILED_TTL) or REVOKED job, of one kind or all, that was not run again
    already: each as `POST /jobs/{id}/retry` would (admins)."""
    if not user.admin:
        raise NotOwner("bulk retry is for admins")
    retried = await retry_all(arq, body.status, kinds.__contains__, _submit_kind(submit, kinds), body.name)
    return BulkRetryOut(retried=retried)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, responses={409: {"model": ErrorDetailOut}})
async def delete_job_route(job_id: JobId, caller: CallerDep, settings: SettingsDep, kinds: KindsDep) -> Response:
    """Forget a finished job: its result, record, listing entries and files go (then 404). Its owner or an admin;
    409 while it is pending or running."""
    snapshot = await read_snapshot(caller.arq, job_id)
    user = caller.user
    if user is None:
        raise NotAuthenticated("a bearer token is required to delete a job")
    if not (user.admin or (snapshot.view.owner is not None and snapshot.view.owner == user.id)):
        raise NotOwner("only its owner or an admin may delete a job")
    await delete_job(caller.arq, snapshot, kinds, settings)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
