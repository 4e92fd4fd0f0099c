"""CSV reports owned by the user who asked for them: request, follow, download."""

from fastapi import APIRouter, Response, status
from fastapi.responses import FileResponse

from service.core.exceptions import JobNotFound, JobStateConflict
from service.core.reads import read_visible_job
from service.core.status import Status
from service.kinds.reports import ReportArgs, generate_report, report_path
from service.web.api.common import SubmitDep
from service.web.deps import ArqDep, CurrentUser, JobId, SettingsDep
from service.web.schemas import ErrorDetailOut, ReportCreatedOut, ReportOut

router = APIRouter(
    prefix="/reports",
    tags=["reports"],
    responses={401: {"model": ErrorDetailOut}, 403: {"model": ErrorDetailOut}, 404: {"model": ErrorDetailOut}},
)
REPORT = generate_report.name


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses={200: {"model": ReportCreatedOut}})
async def create_report(
    report: ReportArgs, user: CurrentUser, submit: SubmitDep, response: Response
) -> ReportCreatedOut:
    """Queue a CSV report of `rows` rows (a `generate_report` job), owned by the caller; follow it at the
    `Location` header."""
    task_id = await submit(generate_report, report, owner=user.id)
    response.headers["Location"] = f"/reports/{task_id}"
    return ReportCreatedOut(task_id=task_id)


@router.get("/{task_id}")
async def read_report(task_id: JobId, user: CurrentUser, arq: ArqDep) -> ReportOut:
    """The report's status and progress, and its download URL once it is ready."""
    job = await read_visible_job(arq, task_id, user, name=REPORT)
    done = job.status is Status.SUCCESS
    return ReportOut(
        task_id=task_id,
        status=job.status,
        progress=job.progress,
        download_url=f"/reports/{task_id}/download" if done else None,
    )


@router.get(
    "/{task_id}/download",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}}}, 409: {"model": ErrorDetailOut}},
)
async def download_report(task_id: JobId, user: CurrentUser, arq: ArqDep, settings: SettingsDep) -> FileResponse:
    """The finished CSV, streamed. 409 until it is finished; 404 once its result has expired."""
    # The job's record is checked first: a file whose job has expired is never served, even before the cron
    # job removes it.
    job = await read_visible_job(arq, task_id, user, name=REPORT)
    if job.status is not Status.SUCCESS:
        raise JobStateConflict(f"the report is {job.status}, not ready for download")
    path = report_path(settings, job.owner or user.id, task_id)
    if not path.is_file():
        raise JobNotFound("the report file is gone")
    return FileResponse(path, media_type="text/csv", filename=f"report-{task_id}.csv")
