"""What every enqueueing route does: queue a kind's job with the caller's quota and Idempotency-Key, log, and
answer an idempotent repeat with 200."""

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import orjson
from arq.connections import ArqRedis
from fastapi import Depends, Request, Response, status
from pydantic import BaseModel

from service.core.counters import MetricsBuffer
from service.core.enqueue import NewJob, enqueue_many
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
        job = Submission(kind, args, run_at, callback_url)
        (queued,) = await self.many([job], owner=owner, job_ids=[job_id] if job_id else None, key=idempotency_key)
        return queued

    async def many(
        self,
        jobs: Sequence["Submission"],
        *,
        owner: str | None,
        job_ids: Sequence[str] | None = None,
        key: str | None = None,
    ) -> list[str]:
        """Queue `jobs` for `owner` in one atomic step, all or none (the quota counts them all, the Idempotency-Key
        covers them all); their ids in order (the first call's, for a repeat)."""
        new = [
            NewJob(
                job.kind.name,
                job.args.model_dump(mode="json") if isinstance(job.args, BaseModel) else job.args,
                queue=job.kind.queue,
                run_at_ms=None if job.run_at is None else int(job.run_at.timestamp() * 1000),
                job_id=job_ids[n] if job_ids else None,
                callback_url=job.callback_url,
            )
            for n, job in enumerate(jobs)
        ]
        queue = partial(
            enqueue_many,
            self.arq,
            owner=owner,
            record_ttl_s=self.settings.result_ttl,
            max_active=self.settings.max_active_jobs_per_user,
            idempotency_key=key or self.idempotency_key,
            fingerprint=self.fingerprint,
            replicas=self.settings.enqueue_replicas,
            wait_ms=self.settings.enqueue_wait_ms,
        )
        if self.tracing is None:
            queued = await queue(new)
        else:
            # One PRODUCER span for the call: every job of a batch is a child of it.
            name = new[0].function_name if len(new) == 1 else f"batch of {len(new)}"
            with self.tracing.enqueue_span(name, new[0].queue) as (span, traceparent):
                queued = await queue([replace(job, traceparent=traceparent) for job in new])
                span.set_attribute("job.id", queued.job_ids[0] if len(new) == 1 else list(queued.job_ids))
        if queued.created:
            for job in new:
                self.metrics.add_enqueued(job.function_name)
            if len(new) == 1:
                logger.info("job enqueued", extra={"job_id": queued.job_id, "job_name": new[0].function_name})
            else:
                logger.info("jobs enqueued", extra={"job_ids": list(queued.job_ids), "count": len(new)})
        else:
            # An Idempotency-Key repeat: the first call's jobs, and nothing new was queued.
            self.response.status_code = status.HTTP_200_OK
        return list(queued.job_ids)


@dataclass(frozen=True, slots=True)
class Submission:
    """One job for `Submitter.many`: a kind, its arguments, when it is due and where its webhook goes."""

    kind: Kind[Any, Any]
    args: BaseModel | dict[str, Any]
    run_at: datetime | None = None
    callback_url: str | None = None


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
