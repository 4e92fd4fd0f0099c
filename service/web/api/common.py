"""What every enqueueing route does: queue with the caller's quota and Idempotency-Key, log, answer a repeat 200."""

import logging
from dataclasses import dataclass
from typing import Annotated, Any

from arq.connections import ArqRedis
from fastapi import Depends, Response, status

from service.core.counters import MetricsBuffer
from service.core.enqueue import enqueue
from service.settings import Settings
from service.web.deps import ArqDep, IdempotencyKey, MetricsDep, SettingsDep

logger = logging.getLogger("service.web.api")


@dataclass
class Submitter:
    arq: ArqRedis
    settings: Settings
    metrics: MetricsBuffer
    response: Response
    idempotency_key: str | None

    async def __call__(self, function_name: str, kwargs: dict[str, Any], *, owner: str | None) -> str:
        """Queue a job for `owner`; returns its id (the first call's, for an Idempotency-Key repeat)."""
        queued = await enqueue(
            self.arq,
            function_name,
            kwargs,
            owner=owner,
            record_ttl_s=self.settings.result_ttl,
            max_active=self.settings.max_active_jobs_per_user,
            idempotency_key=self.idempotency_key,
        )
        if queued.created:
            self.metrics.add_enqueued(function_name)
            logger.info("job enqueued", extra={"job_id": queued.job_id, "job_name": function_name})
        else:
            # An Idempotency-Key repeat: the first call's job, and nothing new was queued.
            self.response.status_code = status.HTTP_200_OK
        return queued.job_id


async def get_submitter(
    arq: ArqDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Submitter:
    return Submitter(arq, settings, metrics, response, idempotency_key)


SubmitDep = Annotated[Submitter, Depends(get_submitter)]
