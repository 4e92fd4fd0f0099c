"""Plain functions as job kinds, declared on the spot: what `DurableTasks.add_task(func, ...)` takes, as
FastAPI's `BackgroundTasks.add_task` does.

The function's signature is its arguments model (an unannotated parameter takes any JSON value); a plain `def`
runs in a worker thread, as Starlette runs it, an `async def` on the worker's event loop. The web app and the
workers must declare the same function: name it in `JOB_KINDS` as `module:function` (or decorate it with
`@job_kind` yourself, for a model and settings of your own).
"""

import asyncio
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from service.kinds.context import JobContext
from service.kinds.declare import Kind, job_kind

_BY_FUNCTION: dict[Callable[..., Any], Kind[Any, Any]] = {}


class JobArgumentsInvalid(ValueError):
    """`add_task` was called with arguments that do not fit the job kind: a programming error, reported at the
    call (the request answers 422), never a job that fails later."""

    def __init__(self, kind: Kind[Any, Any], errors: Sequence[Mapping[str, Any]]) -> None:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in errors)
        super().__init__(f"the arguments do not fit {kind.name}: {where}")
        self.kind = kind
        self.errors = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in errors]


def function_kind(func: Callable[..., Any]) -> Kind[Any, Any]:
    """The kind of `func`: itself if it is a kind already, else declared once from its signature."""
    if isinstance(func, Kind):
        return func
    if (known := _BY_FUNCTION.get(func)) is not None:
        return known
    fields: dict[str, Any] = {}
    for name, parameter in inspect.signature(func).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"{func.__qualname__}: *args and **kwargs cannot be a job's arguments")
        annotation = Any if parameter.annotation is parameter.empty else parameter.annotation
        fields[name] = (annotation, ... if parameter.default is parameter.empty else parameter.default)
    args_model: type[BaseModel] = create_model(
        f"{func.__name__}_args", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=False), **fields
    )
    is_async = inspect.iscoroutinefunction(func)

    async def run(job: JobContext, args: BaseModel) -> Any:
        kwargs = {name: getattr(args, name) for name in fields}
        if is_async:
            return await func(**kwargs)
        return await asyncio.to_thread(func, **kwargs)  # as Starlette runs a plain def background task

    run.__module__ = func.__module__
    doc = (inspect.getdoc(func) or f"{func.__qualname__}, run by a worker").splitlines()[0]
    kind: Kind[Any, Any] = job_kind(args=args_model, name=func.__name__, description=doc)(run)
    _BY_FUNCTION[func] = kind
    return kind


def bind(kind: Kind[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> BaseModel:
    """`kind`'s arguments model from a call's positional and keyword arguments (positional ones in the model's
    field order); `JobArgumentsInvalid` if they do not fit."""
    names = list(kind.args.model_fields)
    if len(args) > len(names):
        errors = [{"type": "too_many_arguments", "loc": (), "msg": f"takes {len(names)} arguments, {len(args)} given"}]
        raise JobArgumentsInvalid(kind, errors)
    values = dict(zip(names, args, strict=False))
    if duplicated := set(values) & set(kwargs):
        errors = [{"type": "multiple_values", "loc": (name,), "msg": "given twice"} for name in sorted(duplicated)]
        raise JobArgumentsInvalid(kind, errors)
    try:
        arguments: BaseModel = kind.args.model_validate({**values, **kwargs})
    except ValidationError as e:
        raise JobArgumentsInvalid(kind, e.errors()) from None
    return arguments


def load_function(entry: str) -> Kind[Any, Any]:
    """`module:function` (from JOB_KINDS) as a kind."""
    module_name, _, attribute = entry.partition(":")
    func = getattr(importlib.import_module(module_name), attribute)
    return function_kind(func)


__all__ = ["JobArgumentsInvalid", "bind", "function_kind", "load_function"]
