"""A kind for the plugin's tests: it fails its first two tries with an hour's back-off before each retry, so only a
runner that skips back-off finishes it today."""

from pydantic import BaseModel

from service.kinds import Backoff, JobContext, TransientFailure, job_kind


class Nothing(BaseModel):
    pass


@job_kind(args=Nothing, description="Busy twice, then fine", max_tries=3, backoff=Backoff(base_s=3600, cap_s=3600))
async def busy_twice(job: JobContext, args: Nothing) -> int:
    if job.attempt <= 2:
        raise TransientFailure("busy, come back in an hour")
    return job.attempt
