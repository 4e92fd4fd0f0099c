"""The generic task of the FastAPI + Celery tutorial: sleep `type x 10 s`, return true."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from service.kinds.context import JobContext
from service.kinds.declare import job_kind

SECONDS_PER_TYPE = 10


class SleepTaskArgs(BaseModel):
    """A generic task: it sleeps `type x 10 s` (times SLEEP_SCALE) and returns true."""

    model_config = ConfigDict(extra="forbid")

    # StrictInt: "1", 1.0, true, NaN and 1e309 are all refused with 422, as the contract asks.
    type: Annotated[StrictInt, Field(ge=0, le=3, description="0 to 3: the task sleeps type x 10 s")]


@job_kind(args=SleepTaskArgs, result=bool, title="Task", description="Sleep type x 10 s, then return true")
async def run_sleep_task(job: JobContext, args: SleepTaskArgs) -> bool:
    await job.sleep(args.type * SECONDS_PER_TYPE)
    return True
