"""What a job looks like from outside: the view `GET /jobs/{id}` answers, shared by the API, the stream and the page."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from service.core.status import Status


class ErrorOut(BaseModel):
    type: str
    message: str
    # Left out unless present: everyone else sees exactly {"type", "message"}, as in contract v1.
    traceback: str | None = Field(
        default=None, exclude_if=lambda value: value is None, description="on FAILURE, for admins only"
    )


class ProgressOut(BaseModel):
    current: int
    total: int


class TryOut(BaseModel):
    attempt: int
    started_at: datetime
    worker: str | None
    error: str | None = Field(description="the error that ended this try, if it was retried")


class JobView(BaseModel):
    """Everything known about one job, for every kind of job."""

    id: str
    name: str
    status: Status
    owner: str | None
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    attempt: int
    progress: ProgressOut | None
    result: Any = None
    error: ErrorOut | None = None
    worker: str | None = Field(default=None, description="the worker process that ran (or runs) its latest try")
    queue: str = Field(default="default", description="the queue it waits in (its kind's)")
    scheduled_for: datetime | None = Field(default=None, description="when it was enqueued to run; null if at once")
    next_try_at: datetime | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="for a RETRY: when its next try is due (its back-off ends)",
    )
    tries: list[TryOut] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="in GET /jobs/{id}: each try's start, worker and (if it was retried) error",
    )
    args: dict[str, Any] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="its arguments: in GET /jobs/{id}, for an admin and for the owner of an owned job",
    )
