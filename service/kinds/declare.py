"""How a job kind is declared: one decorator next to the coroutine names everything the service needs.

    class ResizeArgs(BaseModel):
        url: HttpUrl
        width: int = Field(ge=1, le=4096)

    @job_kind(args=ResizeArgs, description="Resize an image", queue="default", max_tries=3, timeout_s=60)
    async def resize_image(job: JobContext, args: ResizeArgs) -> dict[str, int]:
        ...

From that one declaration come the arq function the workers run (`service.engine.functions`), `GET /kinds` and
`POST /jobs` (validated against `args`), the page's and the dashboard's lists and the metrics labels. Nothing here
imports the worker engine or the web app: both read the declarations.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter

from service.kinds.context import JobContext
from service.kinds.schedule import parse_cron
from service.settings import Settings

A = TypeVar("A", bound=BaseModel)
R = TypeVar("R")

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
QUEUE_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
DEFAULT_QUEUE = "default"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off between tries after a `TransientFailure`: base_s x 2^(try-1), capped at cap_s, with
    "equal jitter" (half of each step fixed, half random)."""

    base_s: float = 1.0
    cap_s: float = 60.0


@dataclass(frozen=True, eq=False)
class Kind(Generic[A, R]):
    """One kind of job. Call it like its coroutine: `await kind(job, args)` (what tests of the kind do)."""

    name: str
    run: Callable[[JobContext, A], Awaitable[R]]
    args: type[A]
    description: str
    title: str
    result: Any = None  # a type pydantic can describe (a model, `bool`, `dict[str, int]`), or None
    owner_required: bool = False
    queue: str = DEFAULT_QUEUE
    max_tries: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    timeout_s: float | None = None
    schedule: str | None = None  # a cron expression (five fields, or six with seconds first), for a recurring kind
    # Queued by the service itself (a webhook's delivery), never through `POST /jobs`; listed like any other job.
    internal: bool = False
    # What else goes when a finished job of this kind is deleted (`DELETE /jobs/{id}`): its files, say. Called with
    # the settings, the job's id and its owner, after the job's records are gone.
    on_delete: Callable[[Settings, str, str | None], Awaitable[None]] | None = None
    module: str = ""

    async def __call__(self, job: JobContext, args: A) -> R:
        return await self.run(job, args)

    def input_schema(self) -> dict[str, Any]:
        return self.args.model_json_schema()

    def result_schema(self) -> dict[str, Any] | None:
        return None if self.result is None else TypeAdapter(self.result).json_schema()


# Every kind declared in this process, by name.
REGISTRY: dict[str, Kind[Any, Any]] = {}


def job_kind(
    *,
    args: type[A],
    description: str,
    name: str | None = None,
    title: str | None = None,
    result: Any = None,
    owner_required: bool = False,
    queue: str = DEFAULT_QUEUE,
    max_tries: int = 5,
    backoff: Backoff | None = None,
    timeout_s: float | None = None,
    schedule: str | None = None,
    internal: bool = False,
    on_delete: Callable[[Settings, str, str | None], Awaitable[None]] | None = None,
) -> Callable[[Callable[[JobContext, A], Awaitable[R]]], Kind[A, R]]:
    """Declare the decorated coroutine `async def f(job: JobContext, args: Model)` as a kind of job."""

    def declare(run: Callable[[JobContext, A], Awaitable[R]]) -> Kind[A, R]:
        kind_name = name or run.__name__
        if not NAME_PATTERN.fullmatch(kind_name):
            raise ValueError(f"job kind name {kind_name!r} must match {NAME_PATTERN.pattern}")
        if not QUEUE_PATTERN.fullmatch(queue) or queue == "health-check":
            raise ValueError(f"queue name {queue!r} must match {QUEUE_PATTERN.pattern}")
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        if schedule is not None:
            parse_cron(schedule)  # fails here, at import, rather than when a worker starts
        kind: Kind[A, R] = Kind(
            name=kind_name,
            run=run,
            args=args,
            description=description,
            title=title or kind_name.replace("_", " ").capitalize(),
            result=result,
            owner_required=owner_required,
            queue=queue,
            max_tries=max_tries,
            backoff=backoff or Backoff(),
            timeout_s=timeout_s,
            schedule=schedule,
            internal=internal,
            on_delete=on_delete,
            module=run.__module__,
        )
        existing = REGISTRY.get(kind_name)
        if existing is not None and existing.module != kind.module:
            raise ValueError(f"job kind {kind_name!r} is declared twice: in {existing.module} and {kind.module}")
        REGISTRY[kind_name] = kind
        return kind

    return declare
