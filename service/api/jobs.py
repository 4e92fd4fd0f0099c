"""Jobs of every kind: introspection."""

from fastapi import APIRouter

from ..deps import ArqDep, JobId, OptionalUser
from ..jobstore import read_visible_job
from ..schemas import ErrorDetailOut, JobView

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}", responses={403: {"model": ErrorDetailOut}, 404: {"model": ErrorDetailOut}})
async def read_job_view(job_id: JobId, arq: ArqDep, user: OptionalUser) -> JobView:
    """Everything known about a job: status (STARTED while it runs), times, attempt, progress, result or error.
    A job with an owner is visible to that user and to admins only."""
    return await read_visible_job(arq, job_id, user)
