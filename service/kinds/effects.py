"""Side effects that happen once per job id, although arq may run a job more than once (at-least-once)."""

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

from service.core import keys, tracing

if TYPE_CHECKING:
    from service.kinds.context import JobContext

# Markers outlive the job's result by a day, so a late re-run still finds them.
MARKER_EXTRA_TTL_S = 24 * 3600


def _contains(path: Path, needle: bytes) -> bool:
    try:
        with path.open("rb") as f:
            return any(needle in line for line in f)
    except FileNotFoundError:
        return False


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write() of the whole text on an O_APPEND file: concurrent workers' lines never interleave.
    with path.open("a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


async def append_once(job: "JobContext", path: Path, text: str, effect: str) -> bool:
    """Append `text` (which must contain `[<job id>]`) to `path` unless this job already did; True if written.

    The marker in Redis is set after the write, so a crash between the two leaves the line without its marker.
    Only a re-run (attempt > 1) can meet that state, and only then is the file searched for the job's id.
    """
    marker = keys.effect_done(job.id, effect)
    if await job.redis.exists(marker):
        tracing.event("effect", {"job.effect": effect, "job.effect.written": False})
        return False
    already = job.attempt > 1 and await asyncio.to_thread(_contains, path, f"[{job.id}]".encode())
    if not already:
        await asyncio.to_thread(_append, path, text)
    await job.redis.set(marker, b"1", ex=job.settings.result_ttl + MARKER_EXTRA_TTL_S)
    tracing.event("effect", {"job.effect": effect, "job.effect.written": not already})
    return not already
