"""Jobs of every kind: introspection."""

from fastapi import APIRouter

from ..deps import ArqDep, JobId
from ..jobstore import read_job
from ..schemas import ErrorDetailOut, JobView

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}", responses={404: {"model": ErrorDetailOut}})
async def read_job_view(job_id: JobId, arq: ArqDep) -> JobView:
    """Everything known about a job: status (STARTED while it runs), times, attempt, progress, result or error."""
    return await read_job(arq, job_id)
