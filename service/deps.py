"""FastAPI dependencies as `Annotated` aliases: the arq pool and the settings, from lifespan state."""

from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Path, Request

from .jobstore import MAX_JOB_ID_LENGTH
from .settings import Settings


def get_arq(request: Request) -> ArqRedis:
    arq: ArqRedis = request.state.arq
    return arq


def get_settings_from_state(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


ArqDep = Annotated[ArqRedis, Depends(get_arq)]
SettingsDep = Annotated[Settings, Depends(get_settings_from_state)]
JobId = Annotated[str, Path(min_length=1, max_length=MAX_JOB_ID_LENGTH, description="the job's id")]
