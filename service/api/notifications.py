"""The simulated e-mail of the FastAPI BackgroundTasks tutorial, run by a worker instead of the web process."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status
from pydantic import EmailStr

from ..deps import ArqDep, IdempotencyKey, OptionalUser, SettingsDep
from ..jobs.notifications import DEFAULT_MESSAGE, send_notification
from ..queue import enqueue
from ..schemas import ErrorDetailOut, NotificationIn, NotificationOut, SafeText
from .common import log_enqueued

router = APIRouter(tags=["notifications"])


@router.post(
    "/send-notification/{email}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": NotificationOut}, 422: {"model": ErrorDetailOut}},
)
async def create_notification(
    email: Annotated[EmailStr, Path(description="where the notification goes")],
    arq: ArqDep,
    settings: SettingsDep,
    user: OptionalUser,
    response: Response,
    q: Annotated[SafeText | None, Query(description="logged as `found query: <q>`")] = None,
    body: Annotated[NotificationIn | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> NotificationOut:
    """Queue a notification: after about 5 s the worker appends it to `notifications.log`, exactly once."""
    kwargs = {"email": email, "message": body.message if body else DEFAULT_MESSAGE, "query": q}
    owner = user.id if user else None
    queued = await enqueue(
        arq,
        send_notification.__name__,
        kwargs,
        owner=owner,
        record_ttl_s=settings.result_ttl,
        max_active=settings.max_active_jobs_per_user,
        idempotency_key=idempotency_key,
    )
    log_enqueued(queued, send_notification.__name__, response)
    return NotificationOut(task_id=queued.job_id)
