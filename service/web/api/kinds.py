"""Every declared kind of job: `GET /kinds` lists them, `POST /jobs` enqueues any of them, validated against the
kind's own model (the OpenAPI document shows each kind's schema)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self, Union

from fastapi import APIRouter, Body, Response, status
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from service.core.exceptions import NotAuthenticated
from service.core.webhooks import MAX_URL_LENGTH, Allowlist, CallbackRefused, check_callback
from service.kinds import Kind, Kinds
from service.kinds.schedule import next_run
from service.settings import Settings
from service.web.api.common import Submission, SubmitDep
from service.web.deps import OptionalUser, SettingsDep
from service.web.schemas import ErrorDetailOut, TaskCreatedOut


class KindOut(BaseModel):
    name: str
    title: str
    description: str
    input_schema: dict[str, Any] = Field(description="the JSON Schema of `args` in `POST /jobs`")
    result_schema: dict[str, Any] | None
    owner_required: bool = Field(description="a bearer token is needed to enqueue it")
    internal: bool = Field(description="queued by the service itself (a webhook's delivery), not by `POST /jobs`")
    queue: str
    max_tries: int
    timeout_s: float | None
    schedule: str | None = Field(description="a cron expression, for a kind that also runs on its own")
    next_run: datetime | None = Field(description="the next tick of `schedule`")


class KindListOut(BaseModel):
    items: list[KindOut]


def _kind_out(kind: Kind[Any, Any], now: datetime) -> KindOut:
    return KindOut(
        name=kind.name,
        title=kind.title,
        description=kind.description,
        input_schema=kind.input_schema(),
        result_schema=kind.result_schema(),
        owner_required=kind.owner_required,
        internal=kind.internal,
        queue=kind.queue,
        max_tries=kind.max_tries,
        timeout_s=kind.timeout_s,
        schedule=kind.schedule,
        next_run=next_run(kind.schedule, now) if kind.schedule else None,
    )


MAX_DELAY_S = 366 * 24 * 3600
MAX_BATCH = 1000


class BatchCreatedOut(BaseModel):
    task_ids: list[str] = Field(description="the jobs' ids, in the order of the request's `jobs`")


def _iso_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 time with an offset, as a string")  # noqa: TRY004  # pydantic wants ValueError
    return value


class JobRequest(BaseModel):
    """What every kind's `POST /jobs` body has besides `name` and `args`: when the job is due."""

    model_config = ConfigDict(extra="forbid")

    delay_s: Annotated[float, Field(strict=True, ge=0, le=MAX_DELAY_S, allow_inf_nan=False)] | None = Field(
        default=None, description="run it this many seconds from now (not with run_at)"
    )
    run_at: Annotated[AwareDatetime, BeforeValidator(_iso_text)] | None = Field(
        default=None, description="run it at this time: ISO-8601 with an offset (not with delay_s); past: at once"
    )
    callback_url: Annotated[str, Field(strict=True, min_length=1, max_length=MAX_URL_LENGTH)] | None = Field(
        default=None,
        description="POST the job's view here when it ends, signed (`X-Signature: sha256=<HMAC>`); only hosts in "
        "WEBHOOK_ALLOWED_HOSTS",
    )

    @model_validator(mode="after")
    def _one_time_at_most(self) -> Self:
        if self.delay_s is not None and self.run_at is not None:
            raise ValueError("give delay_s or run_at, not both")
        if self.run_at is not None and self.run_at > datetime.now(UTC) + timedelta(seconds=MAX_DELAY_S):
            raise ValueError("run_at is more than a year ahead")
        return self

    def due(self) -> datetime | None:
        """When the job is due, if it was enqueued for later."""
        if self.delay_s is not None:
            return datetime.now(UTC) + timedelta(seconds=self.delay_s)
        return self.run_at


def _request_model(kind: Kind[Any, Any]) -> type["JobRequest"]:
    """`{"name": "<kind>", "args": {...}}` for one kind; `args` may be left out where every field has a default."""
    all_optional = not any(field.is_required() for field in kind.args.model_fields.values())
    args_field = Field(default_factory=kind.args) if all_optional else Field()
    title = "".join(part.capitalize() for part in kind.name.split("_")) + "Job"
    model: type[JobRequest] = create_model(
        title,
        __base__=JobRequest,
        __doc__=kind.description,
        name=(Literal[kind.name], ...),  # type: ignore[arg-type]  # a Literal of a runtime value
        args=(kind.args, args_field),
    )
    return model


async def _check_callback(url: str, settings: Settings) -> None:
    """Refuse (422) a callback this service may not call: see `service.core.webhooks`."""
    if not settings.webhook_secret:
        raise CallbackRefused("webhooks are off: WEBHOOK_SECRET is not set")
    await check_callback(url, Allowlist.parse(settings.webhook_allowed_hosts))


def kinds_router(kinds: Kinds) -> APIRouter:
    """The routes for these kinds: built when the app is, from the kinds it loaded."""
    router = APIRouter(tags=["jobs"])
    models = [_request_model(kind) for kind in kinds.values() if not kind.internal]
    # A union tagged by `name`: an unknown name, or args that do not fit that kind's model, is a 422 that says so.
    job_request: Any = models[0] if len(models) == 1 else Annotated[Union[tuple(models)], Field(discriminator="name")]  # noqa: UP007

    @router.get("/kinds")
    async def read_kinds() -> KindListOut:
        """Every kind of job this service runs, with the JSON Schema of its arguments."""
        now = datetime.now(UTC)
        return KindListOut(items=[_kind_out(kind, now) for kind in kinds.values()])

    @router.post(
        "/jobs",
        status_code=status.HTTP_202_ACCEPTED,
        responses={200: {"model": TaskCreatedOut}, 401: {"model": ErrorDetailOut}, 422: {"model": ErrorDetailOut}},
    )
    async def create_job(
        request: Annotated[job_request, Body()],
        submit: SubmitDep,
        user: OptionalUser,
        response: Response,
        settings: SettingsDep,
    ) -> TaskCreatedOut:
        """Queue a job of any kind (`GET /kinds`); follow it at the `Location` header. A job enqueued with a token
        is owned by its caller; a kind with `owner_required` needs one."""
        kind = kinds[request.name]
        if kind.owner_required and user is None:
            raise NotAuthenticated(f"a bearer token is required for {kind.name} jobs")
        callback_url = request.callback_url
        if callback_url is not None:
            await _check_callback(callback_url, settings)
        task_id = await submit(
            kind, request.args, owner=user.id if user else None, run_at=request.due(), callback_url=callback_url
        )
        response.headers["Location"] = f"/jobs/{task_id}"
        return TaskCreatedOut(task_id=task_id)

    batch_request: Any = create_model(
        "JobBatch",
        __config__=ConfigDict(extra="forbid"),
        jobs=(
            Annotated[list[job_request], Field(min_length=1, max_length=MAX_BATCH)],
            Field(description=f"1 to {MAX_BATCH} `POST /jobs` bodies"),
        ),
    )

    @router.post(
        "/jobs/batch",
        status_code=status.HTTP_202_ACCEPTED,
        responses={200: {"model": BatchCreatedOut}, 401: {"model": ErrorDetailOut}, 422: {"model": ErrorDetailOut}},
    )
    async def create_jobs(
        request: Annotated[batch_request, Body()], submit: SubmitDep, user: OptionalUser, settings: SettingsDep
    ) -> BatchCreatedOut:
        """Queue up to 1000 jobs of any kinds in one atomic step: every one is validated first (a 422 names the
        index of the one that does not fit, and nothing is queued), the quota counts them all (429, nothing
        queued), and an `Idempotency-Key` covers the whole batch."""
        submissions = []
        for index, job in enumerate(request.jobs):  # type: ignore[attr-defined]  # a model built at runtime
            kind = kinds[job.name]
            if kind.owner_required and user is None:
                raise NotAuthenticated(f"jobs[{index}]: a bearer token is required for {kind.name} jobs")
            if job.callback_url is not None:
                try:
                    await _check_callback(job.callback_url, settings)
                except CallbackRefused as e:
                    raise CallbackRefused(f"jobs[{index}].callback_url: {e}", ("jobs", index, "callback_url")) from None
            submissions.append(Submission(kind, job.args, job.due(), job.callback_url))
        task_ids = await submit.many(submissions, owner=user.id if user else None)
        return BatchCreatedOut(task_ids=task_ids)

    return router
