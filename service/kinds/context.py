"""Typed access to what a job finds in arq's `ctx`: settings, the Redis pool, its id and try."""

import asyncio
from typing import Any

from arq.connections import ArqRedis

from service.settings import Settings


def job_settings(ctx: dict[str, Any]) -> Settings:
    settings: Settings = ctx["settings"]
    return settings


def job_redis(ctx: dict[str, Any]) -> ArqRedis:
    redis: ArqRedis = ctx["redis"]
    return redis


async def scaled_sleep(ctx: dict[str, Any], seconds: float) -> None:
    """Sleep for a simulated duration, multiplied by SLEEP_SCALE."""
    await asyncio.sleep(seconds * job_settings(ctx).sleep_scale)
