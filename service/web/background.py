"""`DurableTasks`: FastAPI's `BackgroundTasks` interface, with each task a durable job run by a worker.

    from service.web.background import DurableTasks

    @app.post("/send-notification/{email}")
    async def send_notification(email: str, background_tasks: DurableTasks):   # was: BackgroundTasks
        background_tasks.add_task(write_notification, email, message="some notification")
        return {"message": "Notification sent in the background"}

The order of effects: the handler runs first; `add_task` only checks the call against the kind's arguments model
(a call that does not fit is a 422 at once, naming the function) and picks the job's id; when the handler returns,
its jobs are enqueued, one script each, before the response is sent. So a 2xx means every job is in Redis; a
handler that raises enqueues nothing; and if Redis is down the response is a 503 with `Retry-After` and no job is
queued by that request. What the handler itself did before returning (a database write, say) is not undone by
that 503: make it idempotent, or send an `Idempotency-Key`, which makes the retry of the same request find the
jobs the first one queued.
"""

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from arq.connections import ArqRedis
from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from redis.exceptions import RedisError

from service.auth import InvalidToken, verify_token
from service.core.connections import web_redis
from service.core.counters import MetricsBuffer
from service.core.exceptions import IdempotencyKeyReused, NotReplicated, QuotaExceeded
from service.core.tracing import Tracing
from service.kinds import Kind
from service.kinds.functions import JobArgumentsInvalid, bind, function_kind
from service.settings import Settings, get_settings
from service.web.api.common import Submitter, request_fingerprint
from service.web.errors import QUOTA_RETRY_AFTER_S, RETRY_AFTER_S

logger = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False)


class DurableBackgroundTasks:
    """What a handler gets for `DurableTasks`: `add_task(func, *args, **kwargs)`, as on `BackgroundTasks`."""

    def __init__(self, submit: Submitter, owner: str | None) -> None:
        self._submit = submit
        self._owner = owner
        self._pending: list[tuple[Kind[Any, Any], BaseModel, str]] = []

    def add_task(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        """Queue `func(*args, **kwargs)` as a job when the handler returns; returns the job's id (for a
        `Location` header or a `task_id` in the response). `func` is a declared kind, or a plain function
        declared on the spot (`service.kinds.functions`). A call that does not fit answers 422 at once."""
        kind = function_kind(func)
        try:
            arguments = bind(kind, args, kwargs)
        except JobArgumentsInvalid as e:
            logger.error("add_task(%s, ...): %s", kind.name, e)
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=e.errors) from e
        job_id = self._job_id(len(self._pending))
        self._pending.append((kind, arguments, job_id))
        return job_id

    @property
    def job_ids(self) -> list[str]:
        return [job_id for _, _, job_id in self._pending]

    def _job_id(self, n: int) -> str:
        key = self._submit.idempotency_key
        if key is None:
            return uuid.uuid4().hex
        # With an Idempotency-Key, the same request's n-th task has the same id, so a repeat's response names the
        # jobs the first request queued.
        seed = f"{self._owner or '~'}\0{key}\0{self._submit.fingerprint}\0{n}".encode()
        return hashlib.sha256(seed).hexdigest()[:32]

    async def enqueue(self) -> None:
        """Queue every task added, in order. Errors become HTTP answers here, so that any FastAPI app (not only
        this service's, with its exception handlers) answers 503, 429 or 422 and never a 500."""
        key = self._submit.idempotency_key
        try:
            for n, (kind, arguments, job_id) in enumerate(self._pending):
                task_key = None if key is None else f"{key}#{n}"
                await self._submit(kind, arguments, owner=self._owner, job_id=job_id, idempotency_key=task_key)
        except (RedisError, OSError, NotReplicated) as e:
            logger.warning("could not enqueue %d background jobs: %r", len(self._pending), e)
            detail = "the job queue is unavailable, try again shortly"
            raise HTTPException(503, detail=detail, headers={"Retry-After": str(RETRY_AFTER_S)}) from e
        except QuotaExceeded as e:
            raise HTTPException(429, detail=str(e), headers={"Retry-After": str(QUOTA_RETRY_AFTER_S)}) from e
        except IdempotencyKeyReused as e:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(e)) from e


@dataclass
class _Service:
    arq: ArqRedis
    settings: Settings
    metrics: MetricsBuffer
    flush: bool  # no flusher task runs: add the counts to Redis after each request
    tracing: Tracing | None = None


_shared: _Service | None = None


def _service(request: Request) -> _Service:
    """This service's app state, or, in any other FastAPI app, one pool for the process (made on first use)."""
    global _shared
    state = request.state
    if hasattr(state, "arq"):
        return _Service(state.arq, state.settings, state.metrics, flush=False, tracing=state.tracing)
    if _shared is None:
        settings = get_settings()
        tracing = Tracing.from_settings(settings, "web")
        _shared = _Service(web_redis(settings), settings, MetricsBuffer(), flush=True, tracing=tracing)
    return _shared


async def durable_tasks(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncIterator[DurableBackgroundTasks]:
    service = _service(request)
    owner = None
    if credentials is not None:
        try:
            owner = verify_token(credentials.credentials, service.settings.secret_key).id
        except InvalidToken as e:
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            raise HTTPException(401, detail="invalid or expired token", headers=headers) from e
    key = request.headers.get("idempotency-key") or None
    fingerprint = await request_fingerprint(request) if key is not None else ""
    submit = Submitter(service.arq, service.settings, service.metrics, response, key, fingerprint, service.tracing)
    tasks = DurableBackgroundTasks(submit, owner)
    yield tasks
    # Reached only when the handler returned; `scope="function"`: before the response is sent.
    await tasks.enqueue()
    if service.flush:
        await service.metrics.flush(service.arq)


DurableTasks = Annotated[DurableBackgroundTasks, Depends(durable_tasks, scope="function")]
