"""Generic tasks: the FastAPI + Celery tutorial's `/tasks` endpoints, on arq."""

from fastapi import APIRouter, Response, status

from ..deps import ArqDep, IdempotencyKey, JobId, OptionalUser, SettingsDep
from ..jobs.tasks import run_sleep_task
from ..jobstore import read_visible_job
from ..queue import enqueue
from ..schemas import ErrorDetailOut, TaskCreatedOut, TaskIn, TaskOut
from ..status import Status
from .common import log_enqueued

router = APIRouter(prefix="/tasks", tags=["tasks"])

# As with Celery's default settings (task_track_started=False), a running task still reads PENDING here;
# `GET /jobs/{id}` shows STARTED.
_TUTORIAL_STATUS = {Status.STARTED: Status.PENDING}


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses={200: {"model": TaskCreatedOut}, 422: {"model": ErrorDetailOut}}
)
async def create_task(
    task: TaskIn,
    arq: ArqDep,
    settings: SettingsDep,
    user: OptionalUser,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TaskCreatedOut:
    """Queue a task that sleeps `type x 10` seconds and then returns `true`. A repeat with the same
    `Idempotency-Key` answers 200 with the first call's id."""
    owner = user.id if user else None
    queued = await enqueue(
        arq,
        run_sleep_task.__name__,
        {"task_type": task.type},
        owner=owner,
        record_ttl_s=settings.result_ttl,
        max_active=settings.max_active_jobs_per_user,
        idempotency_key=idempotency_key,
    )
    log_enqueued(queued, run_sleep_task.__name__, response)
    return TaskCreatedOut(task_id=queued.job_id)


@router.get("/{task_id}", responses={404: {"model": ErrorDetailOut}})
async def read_task(task_id: JobId, arq: ArqDep, user: OptionalUser) -> TaskOut:
    """The task's status in Celery's words; `task_result` is the return value, or the error message on FAILURE."""
    job = await read_visible_job(arq, task_id, user)
    if job.status is Status.SUCCESS:
        result = job.result
    elif job.error is not None:
        result = job.error.message
    else:
        result = None
    return TaskOut(task_id=task_id, task_status=_TUTORIAL_STATUS.get(job.status, job.status), task_result=result)
