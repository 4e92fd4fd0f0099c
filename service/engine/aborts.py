"""Aborting running jobs: the API names the job on `keys.ABORT_CHANNEL`, and the worker running it cancels it.

arq's own mechanism (`allow_abort_jobs`) reads a sorted set on every iteration of the worker loop, four commands
each time and an iteration per wake-up; this one costs nothing until an abort is asked for.

An abort before the claim, or of a job whose worker died, is caught by the `abort_requested` flag in its record,
which the worker reads as it claims the job (`dequeue.TAKE_SCRIPT`; `runtime._record_start` for a job started
otherwise). One that arrives after the claim but before the job's wrapper runs is kept for the wrapper
(`starting`, `track`), including one whose message comes in before the claim's own reply (`_recent`).
"""

import asyncio
import time
import weakref
from typing import Any

_running: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[Any]]]" = (
    weakref.WeakKeyDictionary()
)
_aborted: set[str] = set()
_starting: set[str] = set()  # claimed by this process, wrapper not running yet
# Aborts of jobs this process neither runs nor has claimed, by arrival (monotonic s), kept for RECENT_ABORT_S: the
# take script may have claimed the job in Redis while its reply is still on its way (`starting` looks here).
_recent: dict[str, float] = {}
RECENT_ABORT_S = 60.0


def _tasks() -> dict[str, asyncio.Task[Any]]:
    loop = asyncio.get_running_loop()
    tasks = _running.get(loop)
    if tasks is None:
        tasks = _running[loop] = {}
    return tasks


def starting(job_id: str) -> None:
    """This process has claimed `job_id`: an abort before its wrapper runs is kept for `track`, as is one that
    arrived between the claim in Redis and this call."""
    _starting.add(job_id)
    if _recent.pop(job_id, None) is not None:
        _aborted.add(job_id)


def forget(job_id: str) -> None:
    """The job's run in this process is over (its wrapper may never have run: arq fails some jobs before)."""
    _starting.discard(job_id)
    _aborted.discard(job_id)


def track(job_id: str) -> bool:
    """Register the calling task as the one running `job_id` in this process; True if it was aborted already."""
    task = asyncio.current_task()
    assert task is not None, "track() is called from a job's own task"
    _tasks()[job_id] = task
    _starting.discard(job_id)
    return job_id in _aborted


def untrack(job_id: str) -> None:
    _tasks().pop(job_id, None)
    _aborted.discard(job_id)


def abort(job_id: str) -> bool:
    """Cancel `job_id` if this process runs it, or mark it if it is about to; the job's wrapper then ends it as
    aborted."""
    task = _tasks().get(job_id)
    if task is not None and not task.done():
        _aborted.add(job_id)
        task.cancel()
        return True
    if job_id in _starting:
        _aborted.add(job_id)
        return True
    now = time.monotonic()
    while _recent:  # in order of arrival: drop the expired ones from the front
        oldest, heard = next(iter(_recent.items()))
        if heard >= now - RECENT_ABORT_S:
            break
        del _recent[oldest]
    _recent.pop(job_id, None)  # re-inserted at the back
    _recent[job_id] = now
    return False


def was_aborted(job_id: str) -> bool:
    """Whether a cancellation of `job_id` came from `abort` (rather than from a worker shutting down)."""
    return job_id in _aborted
