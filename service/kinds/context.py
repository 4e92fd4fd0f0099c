"""What a job gets: a `JobContext`, not arq's `ctx` dict."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

from arq.connections import ArqRedis

from service.core import events, keys, tracing
from service.core.record import Field
from service.kinds import effects
from service.settings import Settings


@dataclass(slots=True)
class JobContext:
    """One try of one job: who and what it is, the service's settings and Redis, and the helpers a job needs.

    The engine builds it for every try; a test of a kind builds its own (`JobContext(id=..., attempt=1, ...)`).
    """

    id: str
    attempt: int  # 1 for the first try
    settings: Settings
    redis: ArqRedis
    owner: str | None = None  # the signed-in user who enqueued it (owner_required kinds always have one)
    name: str = ""

    async def progress(self, current: int, total: int) -> None:
        """Record progress and announce it: `GET /jobs/{id}` and its event stream show it at once."""
        async with self.redis.pipeline(transaction=True) as pipe:
            mapping = {Field.PROGRESS_CURRENT: current, Field.PROGRESS_TOTAL: total}
            pipe.hset(keys.job_record(self.id), mapping=mapping)
            events.announce(pipe, self.id)
            await pipe.execute()
        tracing.event("progress", {"job.progress.current": current, "job.progress.total": total})

    async def sleep(self, seconds: float) -> None:
        """Sleep for a simulated duration, times SLEEP_SCALE."""
        await asyncio.sleep(seconds * self.settings.sleep_scale)

    async def append_once(self, path: Path, text: str, effect: str) -> bool:
        """Append `text` (containing `[<job id>]`) to `path` once per job, however often the job runs."""
        return await effects.append_once(self, path, text, effect)
