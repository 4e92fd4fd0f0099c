"""Request bodies (`...In`) and response models (`...Out`, `...View`) of the HTTP API."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from .status import Status


class TaskIn(BaseModel):
    """A generic task: it sleeps `type x 10 s` (times SLEEP_SCALE) and returns true."""

    model_config = ConfigDict(extra="forbid")

    # StrictInt: "1", 1.0, true, NaN and 1e309 are all refused with 422, as the contract asks.
    type: Annotated[StrictInt, Field(ge=0, le=3, description="0 to 3: the task sleeps type x 10 s")]


class TaskCreatedOut(BaseModel):
    task_id: str


class TaskOut(BaseModel):
    """Exactly the Celery tutorial's shape."""

    task_id: str
    task_status: Status
    task_result: Any = None


class ErrorOut(BaseModel):
    type: str
    message: str


class ProgressOut(BaseModel):
    current: int
    total: int


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


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    redis: Literal["ok", "unavailable"]
    workers: int
    queued: int


class ErrorDetailOut(BaseModel):
    detail: Any
