"""The simulated e-mail of the FastAPI BackgroundTasks tutorial, run by a worker instead of the web process."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, status
from pydantic import EmailStr

from service.kinds.fields import SafeText
from service.kinds.notifications import DEFAULT_MESSAGE, NotificationArgs, send_notification
from service.web.api.common import SubmitDep
from service.web.deps import OptionalUser
from service.web.schemas import ErrorDetailOut, NotificationIn, NotificationOut

router = APIRouter(tags=["notifications"])


@router.post(
    "/send-notification/{email}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": NotificationOut}, 422: {"model": ErrorDetailOut}},
)
async def create_notification(
    email: Annotated[EmailStr, Path(description="where the notification goes")],
    submit: SubmitDep,
    user: OptionalUser,
    q: Annotated[SafeText | None, Query(description="logged as `found query: <q>`")] = None,
    body: Annotated[NotificationIn | None, Body()] = None,
) -> NotificationOut:
    """Queue a notification (a `send_notification` job): after about 5 s the worker appends it to
    `notifications.log`, exactly once."""
    args = NotificationArgs(email=email, message=body.message if body else DEFAULT_MESSAGE, query=q)
    task_id = await submit(send_notification, args, owner=user.id if user else None)
    return NotificationOut(task_id=task_id)
