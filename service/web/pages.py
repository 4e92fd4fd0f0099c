"""The web page and the operator's dashboard: static files, plus the dashboard's one data endpoint."""

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from arq.connections import ArqRedis
from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.sse import EventSourceResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from service.core import keys
from service.core.exceptions import NotOwner
from service.core.overview import job_changes, read_charts
from service.core.queues import read_queues
from service.core.reads import list_jobs
from service.core.status import Status
from service.core.views import JobView
from service.core.workers import alive_since_ms, workers_seen_since
from service.kinds import Kinds, queues_of
from service.kinds.schedule import next_run
from service.web.deps import AdminUser, ArqDep, CurrentUser, KindsDep

STATIC = Path(__file__).parent / "static"
CHART_MINUTES = 60
RECENT_WORKERS_S = 300  # a worker that stopped beating stays listed this long, its check failing
COALESCE_S = 0.5
IDLE_REFRESH_S = 5.0

router = APIRouter(include_in_schema=False)
static_files = StaticFiles(directory=STATIC)


class QueueOut(BaseModel):
    name: str
    depth: int  # due now (waiting or running)
    waiting: int  # due, and no worker has taken it yet
    running: int  # taken by a worker
    scheduled: int  # not due yet
    history: list[int | None]  # due jobs per minute over the last hour, as the workers' heartbeats saw them


class MinuteOut(BaseModel):
    minute: int  # Unix time of the minute's start
    finished: int
    failed: int
    wait_p50_s: float | None  # of the tries that started in that minute: upper bound of the bucket it falls in
    wait_p95_s: float | None


class KindSummaryOut(BaseModel):
    name: str
    title: str
    queue: str
    internal: bool = False
    schedule: str | None = None
    next_run: datetime | None = None


class WorkerOut(BaseModel):
    id: str
    host: str
    pid: int
    queues: list[str]
    running: int
    jobs_done: int
    started_at: datetime
    last_seen: datetime
    # Its event loop beat within WORKER_ALIVE_S: what `python -m service check` asks on its host.
    check: bool


class DashboardOut(BaseModel):
    kinds: list[KindSummaryOut]
    queues: list[QueueOut]
    workers: list[WorkerOut]
    throughput: list[MinuteOut]
    failed: list[JobView]


@router.get("/")
async def read_index() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/favicon.ico")
async def read_favicon() -> FileResponse:
    """For the browsers that ask for it whatever the page says (and for the API docs' pages)."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@router.get("/dashboard")
async def read_dashboard() -> FileResponse:
    # The page itself is public; everything it shows comes from /dashboard/data, for admins only.
    return FileResponse(STATIC / "dashboard.html")


def _quantile(buckets: dict[bytes, bytes], q: float) -> float | None:
    """The upper bound of the wait bucket the q-quantile falls in (the buckets' own resolution)."""
    counts = sorted(((float(le), int(n)) for le, n in buckets.items()), key=lambda item: item[0])
    total = sum(n for _, n in counts)
    if not total:
        return None
    seen = 0
    for le, n in counts:
        seen += n
        if seen >= q * total:
            return le
    return counts[-1][0]


def _ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


async def _workers(arq: ArqRedis, now: float) -> list[WorkerOut]:
    """Workers that beat within the last RECENT_WORKERS_S: the live ones, and those whose check now fails."""
    alive_since = alive_since_ms(now)
    workers = []
    for info in await workers_seen_since(arq, int((now - RECENT_WORKERS_S) * 1000)):
        workers.append(
            WorkerOut(
                id=info["id"],
                host=info["host"],
                pid=info["pid"],
                queues=info.get("queues", []),
                running=info["running"],
                jobs_done=info["jobs_done"],
                started_at=_ms(info["started_at"]),
                last_seen=_ms(info["last_seen"]),
                check=info["last_seen"] >= alive_since,
            )
        )
    return workers


async def dashboard_data(arq: ArqRedis, kinds: Kinds) -> DashboardOut:
    now = time.time()
    minutes = [int(now) // 60 - n for n in range(CHART_MINUTES - 1, -1, -1)]
    queues, _ = await read_queues(arq, queues_of(kinds), now)
    charts = await read_charts(arq, [q.name for q in queues], minutes)
    at = datetime.fromtimestamp(now, UTC)
    failed, _ = await list_jobs(arq, keys.FAILED_INDEX, status=Status.FAILURE, limit=20, cursor=None)
    return DashboardOut(
        kinds=[
            KindSummaryOut(
                name=k.name,
                title=k.title,
                queue=k.queue,
                internal=k.internal,
                schedule=k.schedule,
                next_run=next_run(k.schedule, at) if k.schedule else None,
            )
            for k in kinds.values()
        ],
        queues=[
            QueueOut(
                name=q.name,
                depth=q.due,
                waiting=q.waiting,
                running=q.running,
                scheduled=q.scheduled,
                history=charts.depth[q.name],
            )
            for q in queues
        ],
        workers=await _workers(arq, now),
        throughput=[
            MinuteOut(
                minute=m.minute * 60,
                finished=m.finished,
                failed=m.failed,
                wait_p50_s=_quantile(m.waits, 0.5),
                wait_p95_s=_quantile(m.waits, 0.95),
            )
            for m in charts.minutes
        ],
        failed=failed,
    )


@router.get("/dashboard/data", include_in_schema=True, tags=["operations"])
async def read_dashboard_data(user: CurrentUser, arq: ArqDep, kinds: KindsDep) -> DashboardOut:
    """Queues (with their depth over the last hour), workers, jobs finished and failed per minute with the queue
    wait's p50 and p95, and the failed-jobs inbox (admins)."""
    if not user.admin:
        raise NotOwner("the dashboard is for admins")
    return await dashboard_data(arq, kinds)


@router.get("/dashboard/events", include_in_schema=True, tags=["operations"], response_class=EventSourceResponse)
async def stream_dashboard(_: AdminUser, arq: ArqDep, kinds: KindsDep) -> AsyncIterator[DashboardOut]:
    """The dashboard's data at once, then again whenever jobs change (every job's events channel, coalesced to
    at most one update per COALESCE_S) and at least every IDLE_REFRESH_S, for the workers' beats (admins)."""
    async for _change in job_changes(arq, IDLE_REFRESH_S, COALESCE_S):
        yield await dashboard_data(arq, kinds)
