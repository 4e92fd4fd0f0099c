"""What every enqueueing route does after the enqueue: log it, and answer a repeat with 200."""

import logging

from fastapi import Response, status

from ..queue import Enqueued

logger = logging.getLogger("service.api")


def log_enqueued(queued: Enqueued, job_name: str, response: Response) -> None:
    if queued.created:
        logger.info("job enqueued", extra={"job_id": queued.job_id, "job_name": job_name})
    else:
        # An Idempotency-Key repeat: the first call's job, and nothing new was queued.
        response.status_code = status.HTTP_200_OK
