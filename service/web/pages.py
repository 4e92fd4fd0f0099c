"""The web page and the operator's dashboard: static files, plus the dashboard's one data endpoint."""

import time
from datetime import UTC, datetime
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
from service.kinds import queues_of
from service.kinds.schedule import next_run
from service.web.deps import ArqDep, CurrentUser, KindsDep

STATIC = Path(__file__).parent / "static"
CHART_MINUTES = 60

router = APIRouter(include_in_schema=False)
static_files = StaticFiles(directory=STATIC)


class QueueOut(BaseModel):
    name: str
    depth: int  # due now (waiting or running)
    scheduled: int  # not due yet


class MinuteOut(BaseModel):
    minute: int  # Unix time of the minute's start
    finished: int


class KindSummaryOut(BaseModel):
    name: str
    title: str
    queue: str
    schedule: str | None = None
    next_run: datetime | None = None


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
    queues = queues_of(kinds)
    now_ms = int(now * 1000)
    async with arq.pipeline(transaction=False) as pipe:
        pipe.mget([keys.finished_per_minute(m) for m in minutes])
        for queue in queues:
            pipe.zcount(keys.queue_key(queue), "-inf", now_ms)
            pipe.zcount(keys.queue_key(queue), f"({now_ms}", "+inf")
        finished, *counts = await pipe.execute()
    at = datetime.fromtimestamp(now, UTC)
    failed, _ = await list_jobs(arq, keys.FAILED_INDEX, status=Status.FAILURE, limit=20, cursor=None)
    return DashboardOut(
        kinds=[
            KindSummaryOut(
                name=k.name,
                title=k.title,
                queue=k.queue,
                schedule=k.schedule,
                next_run=next_run(k.schedule, at) if k.schedule else None,
            )
            for k in kinds.values()
        ],
        queues=[
            QueueOut(name=queue, depth=due, scheduled=later)
            for queue, due, later in zip(queues, counts[0::2], counts[1::2], strict=True)
        ],
        workers=await alive_workers(arq, now),
        throughput=[MinuteOut(minute=m * 60, finished=int(f or 0)) for m, f in zip(minutes, finished, strict=True)],
        failed=failed,
    )
