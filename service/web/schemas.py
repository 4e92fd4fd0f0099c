"""Request bodies (`...In`) and response models (`...Out`) of the HTTP API; the kinds' own argument models are the
bodies of `POST /tasks` and `POST /reports` (`service.kinds`)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.core.status import Status
from service.core.views import JobView, ProgressOut
from service.kinds.fields import SafeText
from service.kinds.notifications import DEFAULT_MESSAGE


class TaskCreatedOut(BaseModel):
    task_id: str


class TaskOut(BaseModel):
    """Exactly the Celery tutorial's shape."""

    task_id: str
    task_status: Status
    task_result: Any = None


class NotificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: SafeText = Field(default=DEFAULT_MESSAGE, description="at most 1000 printable characters")


class NotificationOut(BaseModel):
    message: Literal["Notification sent in the background"] = "Notification sent in the background"
    task_id: str


class ReportCreatedOut(BaseModel):
    task_id: str


class JobListOut(BaseModel):
    items: list[JobView]
    next: str | None = Field(description="pass as `cursor` for the next page; null at the end")


class JobStatusOut(BaseModel):
    id: str
    status: Status


class ReportOut(BaseModel):
    task_id: str
    status: Status
    progress: ProgressOut | None
    download_url: str | None


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    redis: Literal["ok", "unavailable"]
    workers: int
    queued: int = Field(description="jobs due to run now, in every queue")
    queues: dict[str, int] = Field(default_factory=dict, description="jobs due to run now, per queue")


class ErrorDetailOut(BaseModel):
    detail: Any
