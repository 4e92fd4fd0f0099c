"""Enqueueing: arq's own wire format plus this service's job record and idempotency key, in one atomic script."""

from dataclasses import dataclass
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
IDEMPOTENCY_TTL_S = 24 * 3600

# One round trip, atomic: with an idempotency key, a repeat finds the first job's id and writes nothing.
# KEYS: job, queue, record[, idempotency]. ARGV: id, payload, score, job ttl ms, record ttl ms, idempotency
# ttl s, wake-up channel, then the record's field/value pairs.
ENQUEUE_SCRIPT = """
if #KEYS == 4 then
  local first = redis.call('GET', KEYS[4])
  if first then return {0, first} end
  redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[6])
end
redis.call('PSETEX', KEYS[1], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[3], unpack(ARGV, 8))
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('PUBLISH', ARGV[7], '')
return {1, ARGV[1]}
"""


@dataclass(frozen=True, slots=True)
class Enqueued:
    job_id: str
    created: bool  # False when an Idempotency-Key repeat returned the first call's job


async def enqueue(
    redis: ArqRedis,
    function_name: str,
    kwargs: dict[str, Any],
    *,
    record_ttl_s: int,
    owner: str | None = None,
    idempotency_key: str | None = None,
) -> Enqueued:
    """Queue `function_name(**kwargs)` for arq's workers.

    Unlike `ArqRedis.enqueue_job`, this needs no WATCH round trip (ids are random, so they never collide), and
    writes the job record, the idempotency key (scoped to `owner`) and the wake-up for idle workers with the job.
    """
    job_id = uuid4().hex
    now_ms = timestamp_ms()
    payload = serialize_job(function_name, (), kwargs, None, now_ms, serializer=job_serializer)
    record: list[str | int | bytes] = ["name", function_name, "enqueued_at", now_ms]
    if owner is not None:
        record += ["owner", owner]
    script_keys = [job_key_prefix + job_id, default_queue_name, keys.job_record(job_id)]
    if idempotency_key is not None:
        script_keys.append(keys.idempotency(owner, idempotency_key))
    args: list[str | int | bytes] = [
        job_id,
        payload,
        now_ms,
        JOB_EXPIRES_MS,
        JOB_EXPIRES_MS + record_ttl_s * 1000,
        IDEMPOTENCY_TTL_S,
    ]
    script = redis.register_script(ENQUEUE_SCRIPT)  # EVALSHA, falling back to EVAL once per server
    created, found = await script(keys=script_keys, args=[*args, keys.WAKEUP_CHANNEL, *record])
    return Enqueued(job_id=found.decode(), created=bool(created))
