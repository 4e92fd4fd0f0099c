"""Operations: the health check that load balancers and the compose file poll, and Prometheus metrics."""

import time

from fastapi import APIRouter, Response, status
from redis.exceptions import RedisError

from service.core import overview
from service.kinds import queues_of
from service.web.deps import ArqDep, KindsDep, MetricsDep
from service.web.errors import RETRY_AFTER_S
from service.web.metrics import render_metrics
from service.web.schemas import HealthOut

router = APIRouter(tags=["operations"])


@router.get("/health", responses={503: {"model": HealthOut}})
async def read_health(arq: ArqDep, response: Response, kinds: KindsDep) -> HealthOut:
    """`ok` with the number of live workers and of jobs due to run, in all and per queue (scheduled jobs, retries
    waiting out their back-off and the cron jobs arq queues a moment early are not counted); 503 with the same
    shape while Redis is unreachable."""
    try:
        health = await overview.read_health(arq, queues_of(kinds), time.time())
    except (RedisError, OSError):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return HealthOut(status="unavailable", redis="unavailable", workers=0, queued=0, queues={})
    return HealthOut(
        status="ok", redis="ok", workers=health.workers, queued=sum(health.due.values()), queues=health.due
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def read_metrics(arq: ArqDep, metrics: MetricsDep, kinds: KindsDep) -> Response:
    """Prometheus metrics, counted across every worker and web process (the counters live in Redis; each process
    adds its own every few seconds, and this one adds its own first)."""
    await metrics.flush(arq)
    return Response(await render_metrics(arq, kinds), media_type="text/plain; version=0.0.4; charset=utf-8")
