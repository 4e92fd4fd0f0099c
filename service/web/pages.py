"""The web page and the operator's dashboard: static files, plus the dashboard's one data endpoint."""

import time
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from service.core import keys
from service.core.exceptions import NotOwner
from service.core.reads import list_jobs
from service.core.status import Status
from service.core.views import JobView
from service.core.workers import WorkerInfo, alive_workers
from service.web.deps import ArqDep, CurrentUser, KindsDep

STATIC = Path(__file__).parent / "static"
CHART_MINUTES = 60

router = APIRouter(include_in_schema=False)
static_files = StaticFiles(directory=STATIC)


class QueueOut(BaseModel):
    name: str
    depth: int


class MinuteOut(BaseModel):
    minute: int  # Unix time of the minute's start
    finished: int


class KindSummaryOut(BaseModel):
    name: str
    title: str
    queue: str


class DashboardOut(BaseModel):
    kinds: list[KindSummaryOut]
    queues: list[QueueOut]
    workers: list[WorkerInfo]
    throughput: list[MinuteOut]
    failed: list[JobView]


@router.get("/")
async def read_index() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/dashboard")
async def read_dashboard() -> FileResponse:
    # The page itself is public; everything it shows comes from /dashboard/data, for admins only.
    return FileResponse(STATIC / "dashboard.html")


@router.get("/dashboard/data", include_in_schema=True, tags=["operations"])
async def read_dashboard_data(user: CurrentUser, arq: ArqDep, kinds: KindsDep) -> DashboardOut:
    """Queues, live workers, jobs finished per minute over the last hour, and the failed-jobs inbox (admins)."""
    if not user.admin:
        raise NotOwner("the dashboard is for admins")
    now = time.time()
    minutes = [int(now) // 60 - n for n in range(CHART_MINUTES - 1, -1, -1)]
    async with arq.pipeline(transaction=False) as pipe:
        pipe.zcard("arq:queue")
        pipe.mget([keys.finished_per_minute(m) for m in minutes])
        depth, finished = await pipe.execute()
    failed, _ = await list_jobs(arq, keys.ALL_JOBS_INDEX, status=Status.FAILURE, limit=20, cursor=None)
    return DashboardOut(
        kinds=[KindSummaryOut(name=k.name, title=k.title, queue=k.queue) for k in kinds.values()],
        queues=[QueueOut(name="arq:queue", depth=depth)],
        workers=await alive_workers(arq, now),
        throughput=[MinuteOut(minute=m * 60, finished=int(f or 0)) for m, f in zip(minutes, finished, strict=True)],
        failed=failed,
    )
