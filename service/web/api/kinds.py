"""Every declared kind of job: `GET /kinds` lists them, `POST /jobs` enqueues any of them, validated against the
kind's own model (the OpenAPI document shows each kind's schema)."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel, ConfigDict, Field, create_model

from service.core.exceptions import NotAuthenticated
from service.kinds import Kind, Kinds
from service.kinds.schedule import next_run
from service.web.api.common import SubmitDep
from service.web.deps import OptionalUser
from service.web.schemas import ErrorDetailOut, TaskCreatedOut


class KindOut(BaseModel):
    name: str
    title: str
    description: str
    input_schema: dict[str, Any] = Field(description="the JSON Schema of `args` in `POST /jobs`")
    result_schema: dict[str, Any] | None
    owner_required: bool = Field(description="a bearer token is needed to enqueue it")
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
        queue=kind.queue,
        max_tries=kind.max_tries,
        timeout_s=kind.timeout_s,
        schedule=kind.schedule,
        next_run=next_run(kind.schedule, now) if kind.schedule else None,
    )


def _request_model(kind: Kind[Any, Any]) -> type[BaseModel]:
    """`{"name": "<kind>", "args": {...}}` for one kind; `args` may be left out where every field has a default."""
    all_optional = not any(field.is_required() for field in kind.args.model_fields.values())
    args_field = Field(default_factory=kind.args) if all_optional else Field()
    title = "".join(part.capitalize() for part in kind.name.split("_")) + "Job"
    model: type[BaseModel] = create_model(
        title,
        __config__=ConfigDict(extra="forbid", title=title),
        __doc__=kind.description,
        name=(Literal[kind.name], ...),  # type: ignore[arg-type]  # a Literal of a runtime value
        args=(kind.args, args_field),
    )
    return model


def kinds_router(kinds: Kinds) -> APIRouter:
    """The routes for these kinds: built when the app is, from the kinds it loaded."""
    router = APIRouter(tags=["jobs"])
    models = [_request_model(kind) for kind in kinds.values()]
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
        request: Annotated[job_request, Body()], submit: SubmitDep, user: OptionalUser, response: Response
    ) -> TaskCreatedOut:
        """Queue a job of any kind (`GET /kinds`); follow it at the `Location` header. A job enqueued with a token
        is owned by its caller; a kind with `owner_required` needs one."""
        kind = kinds[request.name]
        if kind.owner_required and user is None:
            raise NotAuthenticated(f"a bearer token is required for {kind.name} jobs")
        task_id = await submit(kind, request.args, owner=user.id if user else None)
        response.headers["Location"] = f"/jobs/{task_id}"
        return TaskCreatedOut(task_id=task_id)

    return router
