"""Kinds for tests: `busy_twice` fails its first two tries with an hour's back-off before each retry, so only a
runner that skips back-off finishes it today; `times_out` runs past its timeout."""

import asyncio

from pydantic import BaseModel

from service.kinds import Backoff, JobContext, TransientFailure, job_kind


class Nothing(BaseModel):
    pass


@job_kind(args=Nothing, description="Busy twice, then fine", max_tries=3, backoff=Backoff(base_s=3600, cap_s=3600))
async def busy_twice(job: JobContext, args: Nothing) -> int:
    if job.attempt <= 2:
        raise TransientFailure("busy, come back in an hour")
    return job.attempt


@job_kind(args=Nothing, description="Runs past its timeout", max_tries=1, timeout_s=0.05)
async def times_out(job: JobContext, args: Nothing) -> None:
    await asyncio.sleep(30)  # arq cancels it after 50 ms: a FAILURE that its own code never raised
