"""Aborting running jobs: the API names the job on `keys.ABORT_CHANNEL`, and the worker running it cancels it.

arq's own mechanism (`allow_abort_jobs`) reads a sorted set on every iteration of the worker loop, four commands
each time and an iteration per wake-up; this one costs nothing until an abort is asked for. A job that is running
is cancelled the way arq cancels an aborted job (`Worker.job_tasks`, `Worker.aborting_tasks`), so arq records its
result as aborted (status REVOKED) rather than running it again.

An abort before the claim, or of a job whose worker died, is caught by the `abort_requested` flag in its record,
which the worker reads as it claims the job (`take.TAKE`; `runtime` for a job started otherwise). One that
arrives after the claim but before arq has created the job's task is kept for the job's wrapper (`starting`,
`pending`), including one whose message comes in before the claim's own reply (`_recent`).
"""

import asyncio
import time
from typing import Any

RECENT_ABORT_S = 60.0


class Aborts:
    """One worker's aborts. `job_tasks` and `aborting` are arq's own `Worker.job_tasks` and `Worker.aborting_tasks`."""

    def __init__(self, job_tasks: dict[str, "asyncio.Task[Any]"], aborting: set[str]) -> None:
        self._job_tasks = job_tasks
        self._aborting = aborting
        self._starting: set[str] = set()  # claimed by this worker, its task not running yet
        self._pending: set[str] = set()  # aborted while starting
        # Aborts of jobs this worker neither runs nor has claimed, by arrival (monotonic s): the take script may
        # have claimed the job in Redis while its reply is still on its way (`starting` looks here).
        self._recent: dict[str, float] = {}

    def starting(self, job_id: str) -> None:
        """This worker has claimed `job_id`; an abort that arrived just before is kept for it."""
        self._starting.add(job_id)
        if self._recent.pop(job_id, None) is not None:
            self._pending.add(job_id)

    def pending(self, job_id: str) -> bool:
        """Called by the job's wrapper as it starts: True if an abort arrived before the job could run."""
        self._starting.discard(job_id)
        return job_id in self._pending

    def forget(self, job_id: str) -> None:
        """The job's run in this worker is over (its wrapper may never have run: arq fails some jobs before)."""
        self._starting.discard(job_id)
        self._pending.discard(job_id)

    def abort(self, job_id: str) -> bool:
        """Cancel `job_id` if this worker runs it, or mark it if it is about to; True if it was ours."""
        task = self._job_tasks.get(job_id)
        if task is not None and not task.done():
            self._aborting.add(job_id)
            task.cancel()
            return True
        if job_id in self._starting:
            self._pending.add(job_id)
            return True
        now = time.monotonic()
        while self._recent:  # in order of arrival: drop the expired ones from the front
            oldest, heard = next(iter(self._recent.items()))
            if heard >= now - RECENT_ABORT_S:
                break
            del self._recent[oldest]
        self._recent.pop(job_id, None)  # re-inserted at the back
        self._recent[job_id] = now
        return False
