"""Enqueueing: arq's own wire format, plus this service's job record, written in one transaction."""

from typing import Any
from uuid import uuid4

from arq.connections import ArqRedis
from arq.constants import default_queue_name, expires_extra_ms, job_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

from . import keys
from .serialization import job_serializer

# A queued job that no worker starts within a day expires, as arq's own default; its record goes with it.
JOB_EXPIRES_MS = expires_extra_ms


async def enqueue(
    redis: ArqRedis,
    function_name: str,
    kwargs: dict[str, Any],
    *,
    owner: str | None = None,
    record_ttl_s: int,
) -> str:
    """Queue `function_name(**kwargs)` and return the new job's id.

    Unlike `ArqRedis.enqueue_job`, this needs no WATCH round trip (ids are random, so they never collide) and
    writes the job record and the wake-up for idle workers in the same MULTI/EXEC as the job itself.
    """
    job_id = uuid4().hex
    now_ms = timestamp_ms()
    payload = serialize_job(function_name, (), kwargs, None, now_ms, serializer=job_serializer)
    record: dict[str, str | int] = {"name": function_name, "enqueued_at": now_ms}
    if owner is not None:
        record["owner"] = owner
    record_key = keys.job_record(job_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.psetex(job_key_prefix + job_id, JOB_EXPIRES_MS, payload)
        pipe.zadd(default_queue_name, {job_id: now_ms})
        pipe.hset(record_key, mapping=record)
        pipe.pexpire(record_key, JOB_EXPIRES_MS + record_ttl_s * 1000)
        pipe.publish(keys.WAKEUP_CHANNEL, b"")
        await pipe.execute()
    return job_id
