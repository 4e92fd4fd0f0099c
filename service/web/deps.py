"""FastAPI dependencies as `Annotated` aliases: the arq pool, the settings, the caller, request headers."""

from dataclasses import dataclass
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.auth import InvalidToken, User, verify_token
from service.core.counters import MetricsBuffer
from service.core.exceptions import NotAuthenticated, NotOwner
from service.core.reads import MAX_JOB_ID_LENGTH
from service.kinds import Kinds
from service.settings import Settings

# Every dependency here is `async def` although none awaits: FastAPI runs a plain `def` dependency in its thread
# pool, a thread hop per dependency per request that cost about half the throughput of `GET /tasks/{id}`.
_bearer = HTTPBearer(auto_error=False, description="a token from `python -m service token USER_ID [--admin]`")


async def get_arq(request: Request) -> ArqRedis:
    arq: ArqRedis = request.state.arq
    return arq


async def get_settings_from_state(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


async def get_metrics(request: Request) -> MetricsBuffer:
    metrics: MetricsBuffer = request.state.metrics
    return metrics


async def get_kinds(request: Request) -> Kinds:
    kinds: Kinds = request.state.kinds
    return kinds


ArqDep = Annotated[ArqRedis, Depends(get_arq)]
KindsDep = Annotated[Kinds, Depends(get_kinds)]
MetricsDep = Annotated[MetricsBuffer, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_settings_from_state)]


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _verify(credentials: HTTPAuthorizationCredentials | None, settings: Settings) -> User | None:
    """The caller if they sent a bearer token; a bad token is refused even where none is needed."""
    if credentials is None:
        return None
    try:
        return verify_token(credentials.credentials, settings.secret_key)
    except InvalidToken as e:
        raise NotAuthenticated("invalid or expired token", invalid=True) from e


async def get_optional_user(settings: SettingsDep, credentials: BearerCredentials) -> User | None:
    return _verify(credentials, settings)


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


@dataclass(frozen=True, slots=True)
class Caller:
    """The pool and the (optional) caller in one dependency, for the reads clients poll: FastAPI's dependency
    resolution costs per function, and two functions instead of the four behind `ArqDep` + `OptionalUser` took
    8-12% off the CPU of `GET /tasks/{id}` (an in-process ASGI loop, medians of 5 x 1,000 calls)."""

    arq: ArqRedis
    user: User | None


async def get_caller(request: Request, credentials: BearerCredentials) -> Caller:
    settings: Settings = request.state.settings
    return Caller(request.state.arq, _verify(credentials, settings))


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise NotAuthenticated("a bearer token is required")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin(user: CurrentUser) -> User:
    """The caller, who must be an admin (403 otherwise): checked before a stream starts answering."""
    if not user.admin:
        raise NotOwner("this is for admins")
    return user


AdminUser = Annotated[User, Depends(get_admin)]
JobId = Annotated[str, Path(min_length=1, max_length=MAX_JOB_ID_LENGTH, description="the job's id")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="repeat a POST with the same key to get the first call's job instead of a new one",
    ),
]
