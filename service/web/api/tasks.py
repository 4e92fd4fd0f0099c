"""Generic tasks: the FastAPI + Celery tutorial's `/tasks` endpoints, on arq."""

import orjson
from fastapi import APIRouter, Response, status

from service.core.reads import read_task_state
from service.core.status import Status
from service.kinds.tasks import SleepTaskArgs, run_sleep_task
from service.web.api.common import SubmitDep
from service.web.deps import CallerDep, JobId, OptionalUser
from service.web.schemas import ErrorDetailOut, TaskCreatedOut, TaskOut

router = APIRouter(prefix="/tasks", tags=["tasks"])

# As with Celery's default settings (task_track_started=False), a running task still reads PENDING here;
# `GET /jobs/{id}` shows STARTED.
_TUTORIAL_STATUS = {Status.STARTED: Status.PENDING}


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses={200: {"model": TaskCreatedOut}, 422: {"model": ErrorDetailOut}}
)
async def create_task(task: SleepTaskArgs, submit: SubmitDep, user: OptionalUser) -> TaskCreatedOut:
    """Queue a task that sleeps `type x 10` seconds and then returns `true` (a `run_sleep_task` job, as
    `POST /jobs` would queue it). A repeat with the same `Idempotency-Key` answers 200 with the first call's id."""
    task_id = await submit(run_sleep_task, task, owner=user.id if user else None)
    return TaskCreatedOut(task_id=task_id)


@router.get("/{task_id}", response_model=TaskOut, responses={404: {"model": ErrorDetailOut}})
async def read_task(task_id: JobId, caller: CallerDep) -> Response:
    """The task's status in Celery's words; `task_result` is the return value, or the error message on FAILURE."""
    job = await read_task_state(caller.arq, task_id, caller.user)
    result = job.error.message if job.error is not None else job.result
    # Clients poll this: the body is serialized here, without FastAPI validating it against TaskOut again (the
    # values are a job id, a Status and a JSON value decoded from arq's result).
    body = {"task_id": task_id, "task_status": _TUTORIAL_STATUS.get(job.status, job.status), "task_result": result}
    return Response(orjson.dumps(body), media_type="application/json")
