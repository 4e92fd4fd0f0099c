"""Enqueueing and aborting: arq's own wire format plus this service's bookkeeping, each in one atomic script."""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Required, TypedDict, Unpack
from uuid import uuid4

import orjson
from arq.connections import ArqRedis
from arq.constants import (
    abort_jobs_ss,
    expires_extra_ms,
    job_key_prefix,
)
from arq.jobs import serialize_job, serialize_result
from arq.utils import timestamp_ms
from redis.asyncio.client import Pipeline

from service.core import keys
from service.core.exceptions import IdempotencyKeyReused, NotReplicated, QuotaExceeded
from service.core.indexes import JobKeys, listed_in
from service.core.record import LUA_ANNOUNCE, Field, lua
from service.core.scripts import LuaScript, run_pipeline
from service.core.serialization import job_serializer

# A queued job that no worker starts within a day expires, as arq's own default; its record goes with it.
JOB_EXPIRES_MS = expires_extra_ms
# A job's record outlives its result: the job may start as late as JOB_EXPIRES_MS after its enqueue, and its last
# try may then run for arq's job timeout (300 s) before the result's own lifetime begins.
RECORD_MARGIN_S = 600
IDEMPOTENCY_TTL_S = 24 * 3600

# One round trip, atomic, for one job or a batch: concurrent requests can neither both pass the quota nor both
# create jobs for one idempotency key, and a batch is queued whole or not at all. Returns {1, ids} when queued,
# {0, first call's ids} for an idempotent repeat, {2, ''} over quota, {3, ''} for an idempotency key first used by a
# different request; ids are comma-separated, in the batch's order.
# KEYS: user index, user's active set, idempotency key, all-jobs index, id index.
# ARGV: now ms, idempotency ttl s, wake-up channel, use idempotency (0/1), quota (0 = none), job key prefix, owner
#       (or ''), the request's fingerprint, number of jobs, record key prefix; then three per job: id, payload, and a
#       JSON array of strings (`Meta`): job ttl ms, record ttl ms, index score (µs: jobs queued within the same
#       millisecond still list in order), queue score (when it is due, ms), queue key, kind index, queue index,
#       then the record's field/value pairs. Few arguments per job: redis-py packs every one in Python.
# A job's own keys are named from its id and the prefixes, and its sorted-set entries are added with one ZADD per
# set for the whole batch: 3 commands per job, whatever the batch's size.
ENQUEUE = LuaScript(
    "enqueue",
    """
local now, n, owner, quota = tonumber(ARGV[1]), tonumber(ARGV[9]), ARGV[7], tonumber(ARGV[5])
if ARGV[4] == '1' then
  -- The key's value is '<fingerprint>:<ids>': a repeat must be the same request, not merely the same key.
  local first = redis.call('GET', KEYS[3])
  if first then
    local fingerprint, first_ids = string.match(first, '^([^:]*):(.*)$')
    if fingerprint == ARGV[8] then return {0, first_ids} end
    return {3, ''}
  end
end
if quota > 0 and redis.call('ZCARD', KEYS[2]) + n > quota then
  -- arq deletes a job's key when it ends: members without one are no longer active.
  for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if redis.call('EXISTS', ARGV[6] .. member) == 0 then redis.call('ZREM', KEYS[2], member) end
  end
  if redis.call('ZCARD', KEYS[2]) + n > quota then return {2, ''} end
end
local sets, order = {}, {}
local function add(key, score, member)
  local entries = sets[key]
  if not entries then
    entries = {}
    sets[key] = entries
    order[#order + 1] = key
  end
  entries[#entries + 1] = score
  entries[#entries + 1] = member
end
local ids, longest_job, longest_record = {}, 0, 0
for i = 1, n do
  local a = 8 + 3 * i
  local id, meta = ARGV[a], cjson.decode(ARGV[a + 2])
  local job_ttl, record_ttl, score = tonumber(meta[1]), tonumber(meta[2]), meta[3]
  ids[i] = id
  redis.call('PSETEX', ARGV[6] .. id, job_ttl, ARGV[a + 1])
  redis.call('HSET', ARGV[10] .. id, unpack(meta, 8))
  redis.call('PEXPIRE', ARGV[10] .. id, record_ttl)
  add(meta[5], meta[4], id)
  -- Index entries live as long as the records they point to: a user's index is trimmed here, the all-jobs, kind,
  -- queue and id indexes (every anonymous enqueue would pay for it) by the worker's cron job.
  add(KEYS[4], score, id)
  add(meta[6], score, id)
  add(meta[7], score, id)
  add(KEYS[5], 0, id)
  if quota > 0 then add(KEYS[2], now, id) end
  if owner ~= '' then add(KEYS[1], score, id) end
  if job_ttl > longest_job then longest_job = job_ttl end
  if record_ttl > longest_record then longest_record = record_ttl end
end
for _, key in ipairs(order) do
  local entries = sets[key]
  for first = 1, #entries, 2000 do  -- within what one unpack() may return
    redis.call('ZADD', key, unpack(entries, first, math.min(first + 1999, #entries)))
  end
end
if quota > 0 then redis.call('PEXPIRE', KEYS[2], longest_job) end
if owner ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now * 1000 - longest_record * 1000))
  redis.call('PEXPIRE', KEYS[1], longest_record)
end
local joined = table.concat(ids, ',')
if ARGV[4] == '1' then redis.call('SET', KEYS[3], ARGV[8] .. ':' .. joined, 'EX', ARGV[2]) end
redis.call('PUBLISH', ARGV[3], '')
return {1, joined}
""",
)

# Abort one job atomically. A queued or deferred job is taken off the queue and given its REVOKED result here, so
# it never runs even with no worker up. A claimed (running) job is flagged in its record (a worker starting it
# checks the flag: that covers a job claimed but not yet started, and one whose worker died), named on the abort
# channel, on which every worker of this service listens, and added to arq's own abort set, which a plain arq
# worker with `allow_abort_jobs` reads (arq removes the entry when the job ends).
# KEYS: job, in-progress, queue, result, retry counter, record, events channel, arq's abort set.
# ARGV: id, result payload, result ttl ms, now ms, abort channel.
ABORT = LuaScript(
    "abort",
    lua(
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
    ),
)


@dataclass(frozen=True, slots=True)
class Enqueued:
    job_ids: tuple[str, ...]  # in the order they were given
    created: bool  # False when an Idempotency-Key repeat returned the first call's jobs

    @property
    def job_id(self) -> str:
        """The id of the one job `enqueue` queued."""
        return self.job_ids[0]


@dataclass(frozen=True, slots=True)
class NewJob:
    """One job to queue: its function (a kind's name), its arguments, and where and when it runs."""

    function_name: str
    kwargs: dict[str, Any]
    queue: str = keys.DEFAULT_QUEUE
    run_at_ms: int | None = None
    job_id: str | None = None
    callback_url: str | None = None
    traceparent: str | None = None


class CallOptions(TypedDict, total=False):
    """What applies to every job of one enqueue call: the caller, its quota and its Idempotency-Key."""

    record_ttl_s: Required[int]
    owner: str | None
    idempotency_key: str | None
    fingerprint: str
    max_active: int  # 0: no quota


class JobOptions(CallOptions, total=False):
    """How one job is queued, besides its function and arguments (`enqueue` and `prepare` take them alike)."""

    queue: str
    run_at_ms: int | None
    job_id: str | None
    callback_url: str | None
    traceparent: str | None


_PER_JOB = ("queue", "run_at_ms", "job_id", "callback_url", "traceparent")


def _split(function_name: str, kwargs: dict[str, Any], options: JobOptions) -> tuple[NewJob, CallOptions]:
    job = NewJob(function_name, kwargs, **{k: v for k, v in options.items() if k in _PER_JOB})  # type: ignore[arg-type]
    call: CallOptions = {k: v for k, v in options.items() if k not in _PER_JOB}  # type: ignore[assignment]
    return job, call


async def enqueue(
    redis: ArqRedis,
    function_name: str,
    kwargs: dict[str, Any],
    *,
    replicas: int = 0,
    wait_ms: int = 0,
    **options: Unpack[JobOptions],
) -> Enqueued:
    """Queue `function_name(**kwargs)` on `queue` for arq's workers, due at once or at `run_at_ms`: see
    `enqueue_many`, for one job."""
    job, call = _split(function_name, kwargs, options)
    return await enqueue_many(redis, [job], replicas=replicas, wait_ms=wait_ms, **call)


async def enqueue_many(
    redis: ArqRedis, jobs: Sequence[NewJob], *, replicas: int = 0, wait_ms: int = 0, **options: Unpack[CallOptions]
) -> Enqueued:
    """Queue every job of `jobs` in one atomic script call, all or none; raise `QuotaExceeded` if `owner` would
    pass `max_active` jobs (scheduled ones count).

    A scheduled job and its record live until JOB_EXPIRES_MS after its time, not after its enqueue.

    Unlike `ArqRedis.enqueue_job`, this needs no WATCH round trip (ids are random, so they never collide), and
    writes the job records, the listing indexes, the quota entries, the idempotency key (scoped to `owner`, one for
    the whole call) and the wake-up for idle workers with the jobs themselves.

    With `replicas`, the same round trip waits (WAIT) until that many replicas have the jobs, for at most `wait_ms`,
    and raises `NotReplicated` if fewer did: a failover then could lose them, so the caller must not be told they
    are queued (a retry with the same Idempotency-Key finds them, and waits again).
    """
    prepared = prepare_many(jobs, **options)
    if replicas:

        def queue_and_wait(pipe: Pipeline) -> None:
            ENQUEUE.queue(pipe, prepared.keys, prepared.args)
            pipe.execute_command("WAIT", replicas, wait_ms)

        # Sent again after a NOSCRIPT: the same job ids, so the jobs are queued once.
        (outcome, found), acknowledged = await run_pipeline(redis, queue_and_wait, [ENQUEUE])
        if outcome in (0, 1) and acknowledged < replicas:
            raise NotReplicated(f"the job reached {acknowledged} of {replicas} replicas within {wait_ms} ms")
    else:
        outcome, found = await ENQUEUE.run(redis, prepared.keys, prepared.args)
    if outcome == 2:
        raise QuotaExceeded(f"at most {options.get('max_active', 0)} jobs may be pending or running per user")
    if outcome == 3:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was first used for a different request (method, path, query or body); "
            "use a new key for a new request"
        )
    return Enqueued(job_ids=tuple(found.decode().split(",")), created=outcome == 1)


@dataclass(frozen=True, slots=True)
class Prepared:
    """ENQUEUE's keys and arguments for some jobs: what `enqueue_many` runs, or a transaction runs with its
    own commands (a worker queueing a webhook in the transaction that finishes the job)."""

    job_ids: tuple[str, ...]
    keys: list[str]
    args: list[str | int | bytes]

    @property
    def job_id(self) -> str:
        return self.job_ids[0]


def prepare(function_name: str, kwargs: dict[str, Any], **options: Unpack[JobOptions]) -> Prepared:
    """ENQUEUE's keys and arguments for one job."""
    job, call = _split(function_name, kwargs, options)
    return prepare_many([job], **call)


def prepare_many(jobs: Sequence[NewJob], **options: Unpack[CallOptions]) -> Prepared:
    """The jobs' definitions in arq's wire format, their records, and ENQUEUE's keys and arguments."""
    if not jobs:
        raise ValueError("no job to enqueue")
    record_ttl_s, owner = options["record_ttl_s"], options.get("owner")
    idempotency_key, max_active = options.get("idempotency_key"), options.get("max_active", 0)
    now_ms = timestamp_ms()
    now_us = time.time_ns() // 1000
    scope = owner or "~"
    script_keys = [
        keys.user_jobs_index(scope),
        keys.active_jobs(scope),
        keys.idempotency(owner, idempotency_key or ""),
        keys.ALL_JOBS_INDEX,
        keys.IDS_INDEX,
    ]
    args: list[str | int | bytes] = [
        now_ms,
        IDEMPOTENCY_TTL_S,
        keys.WAKEUP_CHANNEL,
        int(idempotency_key is not None),
        max_active if owner is not None else 0,
        job_key_prefix,
        owner or "",
        options.get("fingerprint", ""),
        len(jobs),
        keys.JOB_RECORD_PREFIX,
    ]
    job_ids = []
    owned = [Field.OWNER, owner] if owner is not None else []
    for n, job in enumerate(jobs):
        job_id = job.job_id or uuid4().hex
        job_ids.append(job_id)
        payload = serialize_job(job.function_name, (), job.kwargs, None, now_ms, serializer=job_serializer)
        due_ms = max(now_ms, job.run_at_ms or now_ms)
        job_ttl_ms = JOB_EXPIRES_MS + (due_ms - now_ms)
        record_ttl_ms = job_ttl_ms + (RECORD_MARGIN_S + record_ttl_s) * 1000
        # Strings all: Lua turns a number of more than 14 digits (a µs score) into text with its precision cut.
        meta = [
            str(job_ttl_ms),
            str(record_ttl_ms),
            str(now_us + n),  # the n-th job of a batch one µs after the one before it: listed in the batch's order
            str(due_ms),
            keys.queue_key(job.queue),
            *listed_in(job.function_name, job.queue),
            Field.NAME,
            job.function_name,
            Field.ENQUEUED_AT,
            str(now_ms),
            Field.QUEUE,
            job.queue,
            *owned,
        ]
        if job.run_at_ms is not None:
            meta += [Field.SCHEDULED_FOR, str(job.run_at_ms)]
        if job.callback_url is not None:
            meta += [Field.CALLBACK_URL, job.callback_url]
        if job.traceparent is not None:
            meta += [Field.TRACEPARENT, job.traceparent]
        args += [job_id, payload, orjson.dumps(meta)]
    return Prepared(tuple(job_ids), script_keys, args)


async def abort(
    redis: ArqRedis,
    job_id: str,
    function_name: str,
    kwargs: dict[str, Any],
    enqueued_ms: int,
    result_ttl_s: int,
    queue: str = keys.DEFAULT_QUEUE,
) -> Literal["terminal", "running", "missing", "revoked"]:
    """Abort a job: see ABORT. The REVOKED result is arq's own record, as a worker would have written it."""
    now_ms = timestamp_ms()
    cancelled = {"type": "CancelledError", "message": "the job was aborted before it started"}
    result = serialize_result(
        # start 0: it never started (the view shows started_at null); tries 0, likewise.
        function_name, (), kwargs, 0, enqueued_ms, False, cancelled, 0, now_ms, f"{job_id}:{function_name}",
        keys.queue_key(queue), job_id=job_id, serializer=job_serializer,
    )  # fmt: skip
    job = JobKeys(job_id)
    script_keys = [
        job.definition, job.in_progress, keys.queue_key(queue), job.result, job.retry, job.record, job.events,
        abort_jobs_ss,
    ]  # fmt: skip
    args: list[str | int | bytes] = [job_id, result or b"", result_ttl_s * 1000, now_ms, keys.ABORT_CHANNEL]
    outcome: bytes = await ABORT.run(redis, script_keys, args)
    return outcome.decode()  # type: ignore[return-value]  # one of the script's four answers
