"""FastAPI dependencies as `Annotated` aliases: the arq pool, the settings, the caller, request headers."""

from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .auth import InvalidToken, User, verify_token
from .errors import NotAuthenticated
from .jobstore import MAX_JOB_ID_LENGTH
from .settings import Settings

_bearer = HTTPBearer(auto_error=False, description="a token from `python -m service token USER_ID [--admin]`")


def get_arq(request: Request) -> ArqRedis:
    arq: ArqRedis = request.state.arq
    return arq


def get_settings_from_state(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


ArqDep = Annotated[ArqRedis, Depends(get_arq)]
SettingsDep = Annotated[Settings, Depends(get_settings_from_state)]


def get_optional_user(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User | None:
    """The caller if they sent a bearer token; a bad token is refused even where none is needed."""
    if credentials is None:
        return None
    try:
        return verify_token(credentials.credentials, settings.secret_key)
    except InvalidToken as e:
        raise NotAuthenticated("invalid or expired token", invalid=True) from e


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise NotAuthenticated("a bearer token is required")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
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
