"""Request bodies (`...In`) and response models (`...Out`, `...View`) of the HTTP API."""

import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from service.core.status import Status

# Control characters, lone surrogates and line/paragraph separators would forge or break log lines.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _printable(text: str) -> str:
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in text):
        raise ValueError("must not contain control characters, line separators or lone surrogates")
    return text


SafeText = Annotated[str, Field(max_length=1000), AfterValidator(_printable)]


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


class NotificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: SafeText = Field(default="some notification", description="at most 1000 printable characters")


class NotificationOut(BaseModel):
    message: Literal["Notification sent in the background"] = "Notification sent in the background"
    task_id: str


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: Annotated[StrictInt, Field(ge=1, le=1_000_000, description="data rows in the CSV")] = 1000


class ReportCreatedOut(BaseModel):
    task_id: str


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
    worker: str | None = Field(default=None, description="the worker process that ran (or runs) its latest try")


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
    queued: int


class ErrorDetailOut(BaseModel):
    detail: Any
