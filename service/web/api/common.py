"""What every enqueueing route does: queue a kind's job with the caller's quota and Idempotency-Key, log, and
answer an idempotent repeat with 200."""

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import orjson
from arq.connections import ArqRedis
from fastapi import Depends, Request, Response, status
from pydantic import BaseModel

from service.core.counters import MetricsBuffer
from service.core.enqueue import enqueue
from service.core.tracing import Tracing
from service.kinds import Kind
from service.settings import Settings
from service.web.deps import ArqDep, IdempotencyKey, MetricsDep, SettingsDep

logger = logging.getLogger("service.api")


async def request_fingerprint(request: Request) -> str:
    """What makes two requests "the same" for an Idempotency-Key: method, path, query (in any order) and body (a
    JSON body by its decoded value, so whitespace and key order do not count)."""
    body = await request.body()  # read once already by FastAPI for the route's own body: Starlette keeps it
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    query = urlencode(sorted(parse_qsl(request.url.query, keep_blank_values=True)))
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


@dataclass
class Submitter:
    arq: ArqRedis
    settings: Settings
    metrics: MetricsBuffer
    response: Response
    idempotency_key: str | None
    fingerprint: str
    tracing: Tracing | None = None

    async def __call__(
        self,
        kind: Kind[Any, Any],
        args: BaseModel | dict[str, Any],
        *,
        owner: str | None,
        run_at: datetime | None = None,
        job_id: str | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> str:
        """Queue a job of `kind` on its queue for `owner`, due at once or at `run_at`; returns its id (the first
        call's, for an Idempotency-Key repeat)."""
        kwargs = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
        queue = partial(
            enqueue,
            self.arq,
            kind.name,
            kwargs,
            owner=owner,
            record_ttl_s=self.settings.result_ttl,
            max_active=self.settings.max_active_jobs_per_user,
            idempotency_key=idempotency_key or self.idempotency_key,
            fingerprint=self.fingerprint,
            job_id=job_id,
            queue=kind.queue,
            run_at_ms=None if run_at is None else int(run_at.timestamp() * 1000),
            callback_url=callback_url,
            replicas=self.settings.enqueue_replicas,
            wait_ms=self.settings.enqueue_wait_ms,
        )
        if self.tracing is None:
            queued = await queue()
        else:
            with self.tracing.enqueue_span(kind.name, kind.queue) as (span, traceparent):
                queued = await queue(traceparent=traceparent)
                span.set_attribute("job.id", queued.job_id)
        if queued.created:
            self.metrics.add_enqueued(kind.name)
            logger.info("job enqueued", extra={"job_id": queued.job_id, "job_name": kind.name})
        else:
            # An Idempotency-Key repeat: the first call's job, and nothing new was queued.
            self.response.status_code = status.HTTP_200_OK
        return queued.job_id


async def get_submitter(
    request: Request,
    arq: ArqDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Submitter:
    fingerprint = await request_fingerprint(request) if idempotency_key is not None else ""
    return Submitter(arq, settings, metrics, response, idempotency_key, fingerprint, request.state.tracing)


SubmitDep = Annotated[Submitter, Depends(get_submitter)]
