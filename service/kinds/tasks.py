"""The generic task of the FastAPI + Celery tutorial."""

from typing import Any

from service.kinds.context import scaled_sleep

SECONDS_PER_TYPE = 10


async def run_sleep_task(ctx: dict[str, Any], task_type: int) -> bool:
    """Sleep `task_type x 10 s` (times SLEEP_SCALE) and return True."""
    await scaled_sleep(ctx, task_type * SECONDS_PER_TYPE)
    return True
