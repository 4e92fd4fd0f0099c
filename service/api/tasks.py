"""Generic tasks: the FastAPI + Celery tutorial's `/tasks` endpoints, on arq."""

import logging

from fastapi import APIRouter, status

from ..deps import ArqDep, JobId, SettingsDep
from ..jobs.tasks import run_sleep_task
from ..jobstore import read_job
from ..queue import enqueue
from ..schemas import ErrorDetailOut, TaskCreatedOut, TaskIn, TaskOut
from ..status import Status

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/tasks", tags=["tasks"])

# As with Celery's default settings (task_track_started=False), a running task still reads PENDING here;
# `GET /jobs/{id}` shows STARTED.
_TUTORIAL_STATUS = {Status.STARTED: Status.PENDING}


@router.post("", status_code=status.HTTP_201_CREATED, responses={422: {"model": ErrorDetailOut}})
async def create_task(task: TaskIn, arq: ArqDep, settings: SettingsDep) -> TaskCreatedOut:
    """Queue a task that sleeps `type x 10` seconds and then returns `true`."""
    task_id = await enqueue(arq, run_sleep_task.__name__, {"task_type": task.type}, record_ttl_s=settings.result_ttl)
    logger.info("job enqueued", extra={"job_id": task_id, "job_name": run_sleep_task.__name__})
    return TaskCreatedOut(task_id=task_id)


@router.get("/{task_id}", responses={404: {"model": ErrorDetailOut}})
async def read_task(task_id: JobId, arq: ArqDep) -> TaskOut:
    """The task's status in Celery's words; `task_result` is the return value, or the error message on FAILURE."""
    job = await read_job(arq, task_id)
    if job.status is Status.SUCCESS:
        result = job.result
    elif job.error is not None:
        result = job.error.message
    else:
        result = None
    return TaskOut(task_id=task_id, task_status=_TUTORIAL_STATUS.get(job.status, job.status), task_result=result)
