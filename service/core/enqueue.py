"""Enqueueing and aborting: arq's own wire format plus this service's bookkeeping, each in one atomic script."""

import time
from dataclasses import dataclass
from typing import Any, Literal, Required, TypedDict, Unpack
from uuid import uuid4

from arq.connections import ArqRedis
from arq.constants import (
    abort_jobs_ss,
    expires_extra_ms,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import serialize_job, serialize_result
from arq.utils import timestamp_ms

from service.core import keys
from service.core.exceptions import IdempotencyKeyReused, NotReplicated, QuotaExceeded
from service.core.record import LUA_ANNOUNCE, Field, lua
from service.core.serialization import job_serializer

# A queued job that no worker starts within a day expires, as arq's own default; its record goes with it.
JOB_EXPIRES_MS = expires_extra_ms
# A job's record outlives its result: the job may start as late as JOB_EXPIRES_MS after its enqueue, and its last
# try may then run for arq's job timeout (300 s) before the result's own lifetime begins.
RECORD_MARGIN_S = 600
IDEMPOTENCY_TTL_S = 24 * 3600

# One round trip, atomic, so that concurrent requests can neither both pass the quota nor both create a job for
# one idempotency key. Returns {1, id} when queued, {0, first id} for an idempotent repeat, {2, ''} over quota,
# {3, ''} for an idempotency key first used by a different request.
# KEYS: job, queue, record, all-jobs index, user index, user's active set, idempotency key, kind index, queue
#       index, id index.
# ARGV: id, payload, now ms, job ttl ms, record ttl ms, idempotency ttl s, wake-up channel, use idempotency (0/1),
#       quota (0 = none), job key prefix, owner (or ''), index score (now in µs: jobs queued within the same
#       millisecond still list in order), the request's fingerprint, the queue score (when it is due, ms), then the
#       record's field/value pairs.
ENQUEUE_SCRIPT = """
local id, now, job_ttl, record_ttl = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if ARGV[8] == '1' then
  -- The key's value is '<fingerprint>:<id>': a repeat must be the same request, not merely the same key.
  local first = redis.call('GET', KEYS[7])
  if first then
    local fingerprint, first_id = string.match(first, '^([^:]*):(.*)$')
    if fingerprint == ARGV[13] then return {0, first_id} end
    return {3, ''}
  end
end
local quota = tonumber(ARGV[9])
if quota > 0 then
  if redis.call('ZCARD', KEYS[6]) >= quota then
    -- arq deletes a job's key when it ends: members without one are no longer active.
    for _, member in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
      if redis.call('EXISTS', ARGV[10] .. member) == 0 then redis.call('ZREM', KEYS[6], member) end
    end
    if redis.call('ZCARD', KEYS[6]) >= quota then return {2, ''} end
  end
  redis.call('ZADD', KEYS[6], now, id)
  redis.call('PEXPIRE', KEYS[6], job_ttl)
end
if ARGV[8] == '1' then redis.call('SET', KEYS[7], ARGV[13] .. ':' .. id, 'EX', ARGV[6]) end
redis.call('PSETEX', KEYS[1], job_ttl, ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[14], id)
redis.call('HSET', KEYS[3], unpack(ARGV, 15))
redis.call('PEXPIRE', KEYS[3], record_ttl)
-- Index entries live as long as the records they point to: a user's index is trimmed here, the all-jobs, kind,
-- queue and id indexes (every anonymous enqueue would pay for it) by the worker's cron job.
redis.call('ZADD', KEYS[4], ARGV[12], id)
redis.call('ZADD', KEYS[8], ARGV[12], id)
redis.call('ZADD', KEYS[9], ARGV[12], id)
redis.call('ZADD', KEYS[10], 0, id)
if ARGV[11] ~= '' then
  redis.call('ZADD', KEYS[5], ARGV[12], id)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', string.format('%d', tonumber(ARGV[12]) - record_ttl * 1000))
  redis.call('PEXPIRE', KEYS[5], record_ttl)
end
redis.call('PUBLISH', ARGV[7], '')
return {1, id}
"""

# Abort one job atomically. A queued or deferred job is taken off the queue and given its REVOKED result here, so
# it never runs even with no worker up. A claimed (running) job is flagged in its record (a worker starting it
# checks the flag: that covers a job claimed but not yet started, and one whose worker died), named on the abort
# channel, on which every worker of this service listens, and added to arq's own abort set, which a plain arq
# worker with `allow_abort_jobs` reads (arq removes the entry when the job ends).
# KEYS: job, in-progress, queue, result, retry counter, record, events channel, arq's abort set.
# ARGV: id, result payload, result ttl ms, now ms, abort channel.
ABORT_SCRIPT = lua(
    """
local events_key = KEYS[7]
if redis.call('EXISTS', KEYS[4]) == 1 then return 'terminal' end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[6], '$abort_requested', ARGV[4])
  redis.call('ZADD', KEYS[8], ARGV[4], ARGV[1])
  redis.call('PUBLISH', ARGV[5], ARGV[1])
  return 'running'
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
-- A worker claiming this job right now WATCHes its in-progress key: touching it makes that claim fail.
redis.call('PSETEX', KEYS[2], 1000, 'aborted')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[5])
redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[3])
$announce
return 'revoked'
""".replace("$announce", LUA_ANNOUNCE)
)


@dataclass(frozen=True, slots=True)
class Enqueued:
    job_id: str
    created: bool  # False when an Idempotency-Key repeat returned the first call's job


class JobOptions(TypedDict, total=False):
    """How a job is queued, besides its function and arguments (`enqueue` and `prepare` take them alike)."""

    record_ttl_s: Required[int]
    owner: str | None
    idempotency_key: str | None
    fingerprint: str
    max_active: int  # 0: no quota
    queue: str
    run_at_ms: int | None
    job_id: str | None
    callback_url: str | None
    traceparent: str | None


async def enqueue(
    redis: ArqRedis,
    function_name: str,
    kwargs: dict[str, Any],
    *,
    replicas: int = 0,
    wait_ms: int = 0,
    **options: Unpack[JobOptions],
) -> Enqueued:
    """Queue `function_name(**kwargs)` on `queue` for arq's workers, due at once or at `run_at_ms`; raise
    `QuotaExceeded` if `owner` has `max_active` jobs (scheduled ones count).

    A scheduled job and its record live until JOB_EXPIRES_MS after its time, not after its enqueue.

    Unlike `ArqRedis.enqueue_job`, this needs no WATCH round trip (ids are random, so they never collide), and
    writes the job record, the listing indexes, the quota entry, the idempotency key (scoped to `owner`) and the
    wake-up for idle workers with the job itself.

    With `replicas`, the same round trip waits (WAIT) until that many replicas have the job, for at most `wait_ms`,
    and raises `NotReplicated` if fewer did: a failover then could lose the job, so the caller must not be told it
    is queued (a retry with the same Idempotency-Key finds it, and waits again).
    """
    prepared = prepare(function_name, kwargs, **options)
    script = redis.register_script(ENQUEUE_SCRIPT)  # EVALSHA, falling back to EVAL once per server
    if replicas:
        async with redis.pipeline(transaction=False) as pipe:
            await script(keys=prepared.keys, args=prepared.args, client=pipe)
            pipe.execute_command("WAIT", replicas, wait_ms)
            (outcome, found), acknowledged = await pipe.execute()
        if outcome in (0, 1) and acknowledged < replicas:
            raise NotReplicated(f"the job reached {acknowledged} of {replicas} replicas within {wait_ms} ms")
    else:
        outcome, found = await script(keys=prepared.keys, args=prepared.args)
    if outcome == 2:
        raise QuotaExceeded(f"at most {options.get('max_active', 0)} jobs may be pending or running per user")
    if outcome == 3:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was first used for a different request (method, path, query or body); "
            "use a new key for a new request"
        )
    return Enqueued(job_id=found.decode(), created=outcome == 1)


@dataclass(frozen=True, slots=True)
class Prepared:
    """ENQUEUE_SCRIPT's keys and arguments for one job: what `enqueue` runs, or a transaction runs with its own
    commands (a worker queueing a webhook in the transaction that finishes the job)."""

    job_id: str
    keys: list[str]
    args: list[str | int | bytes]


def prepare(function_name: str, kwargs: dict[str, Any], **options: Unpack[JobOptions]) -> Prepared:
    """The job's definition in arq's wire format, its record, and ENQUEUE_SCRIPT's keys and arguments."""
    record_ttl_s, owner = options["record_ttl_s"], options.get("owner")
    idempotency_key, max_active = options.get("idempotency_key"), options.get("max_active", 0)
    queue, run_at_ms = options.get("queue", keys.DEFAULT_QUEUE), options.get("run_at_ms")
    callback_url, traceparent = options.get("callback_url"), options.get("traceparent")
    job_id = options.get("job_id") or uuid4().hex
    now_ms = timestamp_ms()
    payload = serialize_job(function_name, (), kwargs, None, now_ms, serializer=job_serializer)
    due_ms = max(now_ms, run_at_ms or now_ms)
    job_ttl_ms = JOB_EXPIRES_MS + (due_ms - now_ms)
    record: list[str | int | bytes] = [Field.NAME, function_name, Field.ENQUEUED_AT, now_ms, Field.QUEUE, queue]
    if owner is not None:
        record += [Field.OWNER, owner]
    if run_at_ms is not None:
        record += [Field.SCHEDULED_FOR, run_at_ms]
    if callback_url is not None:
        record += [Field.CALLBACK_URL, callback_url]
    if traceparent is not None:
        record += [Field.TRACEPARENT, traceparent]
    scope = owner or "~"
    script_keys = [
        job_key_prefix + job_id,
        keys.queue_key(queue),
        keys.job_record(job_id),
        keys.ALL_JOBS_INDEX,
        keys.user_jobs_index(scope),
        keys.active_jobs(scope),
        keys.idempotency(owner, idempotency_key or ""),
        keys.kind_index(function_name),
        keys.queue_index(queue),
        keys.IDS_INDEX,
    ]
    args: list[str | int | bytes] = [
        job_id,
        payload,
        now_ms,
        job_ttl_ms,
        job_ttl_ms + (RECORD_MARGIN_S + record_ttl_s) * 1000,
        IDEMPOTENCY_TTL_S,
        keys.WAKEUP_CHANNEL,
        int(idempotency_key is not None),
        max_active if owner is not None else 0,
        job_key_prefix,
        owner or "",
        time.time_ns() // 1000,
        options.get("fingerprint", ""),
        due_ms,
    ]
    return Prepared(job_id, script_keys, [*args, *record])


async def abort(
    redis: ArqRedis,
    job_id: str,
    function_name: str,
    kwargs: dict[str, Any],
    enqueued_ms: int,
    result_ttl_s: int,
    queue: str = keys.DEFAULT_QUEUE,
) -> Literal["terminal", "running", "missing", "revoked"]:
    """Abort a job: see ABORT_SCRIPT. The REVOKED result is arq's own record, as a worker would have written it."""
    now_ms = timestamp_ms()
    cancelled = {"type": "CancelledError", "message": "the job was aborted before it started"}
    result = serialize_result(
        # start 0: it never started (the view shows started_at null); tries 0, likewise.
        function_name, (), kwargs, 0, enqueued_ms, False, cancelled, 0, now_ms, f"{job_id}:{function_name}",
        keys.queue_key(queue), job_id=job_id, serializer=job_serializer,
    )  # fmt: skip
    script_keys = [
        job_key_prefix + job_id,
        in_progress_key_prefix + job_id,
        keys.queue_key(queue),
        result_key_prefix + job_id,
        retry_key_prefix + job_id,
        keys.job_record(job_id),
        keys.job_events(job_id),
        abort_jobs_ss,
    ]
    args: list[str | int | bytes] = [job_id, result or b"", result_ttl_s * 1000, now_ms, keys.ABORT_CHANNEL]
    outcome: bytes = await redis.register_script(ABORT_SCRIPT)(keys=script_keys, args=args)
    return outcome.decode()  # type: ignore[return-value]  # one of the script's four answers
