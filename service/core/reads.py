"""Read jobs from arq's keys and this service's records, one pipeline per page, as `JobView`s."""

import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from service.auth import User
from service.core import indexes, keys
from service.core.exceptions import BadCursor, JobNotFound, NotOwner
from service.core.indexes import JobFilter, JobKeys
from service.core.keys import DEFAULT_QUEUE
from service.core.record import LUA_QUEUE_KEY, Field, lua, try_error_field
from service.core.scripts import LuaScript, run_pipeline
from service.core.serialization import job_deserializer
from service.core.status import ArqState, Status, contract_status
from service.core.views import ErrorOut, JobView, ProgressOut, TryOut

logger = logging.getLogger(__name__)

# Longer ids are refused before they reach Redis; arq's own ids are 32 hex characters.
MAX_JOB_ID_LENGTH = 128
UNREADABLE = "<unreadable>"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A job's view, plus what it takes to run it again."""

    view: JobView
    function: str
    kwargs: dict[str, Any]
    enqueued_ms: int
    traceback: str | None = None  # a failed try's, for admins
    retried_as: str | None = None
    callback_url: str | None = None
    tries: tuple[TryOut, ...] = ()

    def detail(self, user: User | None) -> JobView:
        """The view with what only some may see: the arguments for an admin and for the owner of an owned job,
        the traceback of a failure for an admin. Nobody else sees either."""
        admin = user is not None and user.admin
        owner = user is not None and self.view.owner is not None and self.view.owner == user.id
        update: dict[str, Any] = {"tries": list(self.tries)}
        if admin or owner:
            update["args"] = self.kwargs
        if admin and self.traceback and self.view.error is not None:
            update["error"] = self.view.error.model_copy(update={"traceback": self.traceback})
        return self.view.model_copy(update=update)


def _ms_to_datetime(value: Any) -> datetime | None:
    if value is None or value == b"":
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _load(raw: bytes | None, job_id: str, what: str) -> dict[str, Any] | None:
    """Decode an arq record; something that is not our JSON (a planted pickle, say) is reported, never run."""
    if raw is None:
        return None
    try:
        value = job_deserializer(raw)
    except orjson.JSONDecodeError:
        logger.warning("job %s: %s record is not JSON; ignoring it", job_id, what)
        return {}
    return value if isinstance(value, dict) else {}


def _error(result: dict[str, Any]) -> ErrorOut:
    raw = result.get("r")
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        return ErrorOut(type=raw["type"], message=str(raw.get("message", "")))
    if not result:
        return ErrorOut(type="DeserializationError", message="the job's result could not be read")
    return ErrorOut(type="Error", message=str(raw))


def _last_error(record: dict[str, bytes]) -> ErrorOut | None:
    """The error of the previous try, which the worker records before scheduling the next one."""
    if Field.ERROR_TYPE not in record:
        return None
    return ErrorOut(type=record[Field.ERROR_TYPE].decode(), message=record.get(Field.ERROR_MESSAGE, b"").decode())


def _progress(record: dict[str, bytes]) -> ProgressOut | None:
    total = record.get(Field.PROGRESS_TOTAL)
    if total is None:
        return None
    return ProgressOut(current=int(record.get(Field.PROGRESS_CURRENT, b"0")), total=int(total))


# Everything a job's view is read from, in one command: arq's definition, result, claim and try counter, the job's
# score in its own queue (named in its record) and the record itself (flat field/value pairs).
# KEYS: definition, result, in-progress, retry counter, record. ARGV: id.
READ = LuaScript(
    "read_job",
    lua(
        LUA_QUEUE_KEY
        + """
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), redis.call('EXISTS', KEYS[3]),
        redis.call('ZSCORE', queue_key(KEYS[5]), ARGV[1]), redis.call('GET', KEYS[4]), redis.call('HGETALL', KEYS[5])}
"""
    ),
)


def _queue_reads(pipe: Pipeline, job_id: str) -> None:
    job = JobKeys(job_id)
    READ.queue(pipe, [job.definition, job.result, job.in_progress, job.retry, job.record], [job_id])


@dataclass(frozen=True, slots=True)
class _Outcome:
    """The contract's status from arq's keys, with the result record it was read from."""

    status: Status | None
    result: dict[str, Any]  # arq's result record; empty while there is none
    success: bool | None
    error: ErrorOut | None  # a failed result's error (a RETRY's last error lives in our record)


def _outcome(
    job_id: str, raw_result: bytes | None, has_definition: bool, in_progress: Any, score: Any, tries: Any
) -> _Outcome:
    result = _load(raw_result, job_id, "result")
    success = None if result is None else bool(result.get("s", False))
    error = None if result is None or success else _error(result)
    status = contract_status(
        ArqState(
            has_definition=has_definition,
            in_progress=bool(in_progress),
            queued=score is not None,
            tries_started=int(tries or 0),
            success=success,
            error_type=error.type if error else None,
        )
    )
    return _Outcome(status, result or {}, success, error)


def _may_see(user: User | None, owner: str | None) -> bool:
    """Ownerless jobs are visible to anyone, owned ones to their owner and admins."""
    return user.may_see(owner) if user else owner is None


def _snapshot(job_id: str, replies: list[Any]) -> Snapshot | None:
    """Build the snapshot from the six replies `_queue_reads` asked for; None if the job is unknown or gone."""
    raw_def, raw_result, in_progress, score, tries, flat_record = replies
    # The record's field names as `Field` values (a StrEnum: `record[Field.OWNER]` reads the "owner" field).
    record = {name.decode(): value for name, value in zip(flat_record[::2], flat_record[1::2], strict=True)}
    definition = _load(raw_def, job_id, "job")
    outcome = _outcome(job_id, raw_result, definition is not None, in_progress, score, tries)
    status, result, success, error = outcome.status, outcome.result, outcome.success, outcome.error
    if status is None:
        return None
    source = result or definition or {}
    owner = record.get(Field.OWNER)
    view = JobView(
        id=job_id,
        name=str(source.get("f") or record.get(Field.NAME, b"").decode() or UNREADABLE),
        status=status,
        owner=owner.decode() if owner else None,
        enqueued_at=_ms_to_datetime(source.get("et") or record.get(Field.ENQUEUED_AT)),
        started_at=_ms_to_datetime(result.get("st") or record.get(Field.STARTED_AT)),
        finished_at=_ms_to_datetime(result.get("ft")),
        attempt=int(result.get("t") or record.get(Field.ATTEMPT) or tries or 0),
        progress=_progress(record),
        result=result.get("r") if success else None,
        error=error or (_last_error(record) if status is Status.RETRY else None),
        worker=record.get(Field.WORKER, b"").decode() or None,
        queue=record.get(Field.QUEUE, DEFAULT_QUEUE.encode()).decode(),
        scheduled_for=_ms_to_datetime(record.get(Field.SCHEDULED_FOR)),
        next_try_at=_ms_to_datetime(int(float(score))) if status is Status.RETRY and score is not None else None,
    )
    kwargs = source.get("k")
    traceback, retried_as = record.get(Field.TRACEBACK), record.get(Field.RETRIED_AS)
    callback_url = record.get(Field.CALLBACK_URL)
    tries = _tries(record)
    if status is Status.FAILURE and error is not None and tries and tries[-1].error is None:
        # The try that ended the job: its error is the job's (the record keeps only retried tries' errors).
        tries = (*tries[:-1], tries[-1].model_copy(update={"error": f"{error.type}: {error.message}"}))
    return Snapshot(
        view,
        view.name,
        kwargs if isinstance(kwargs, dict) else {},
        int(source.get("et") or 0),
        traceback.decode() if traceback else None,
        retried_as.decode() if retried_as else None,
        callback_url.decode() if callback_url else None,
        tries,
    )


def _tries(record: dict[str, bytes]) -> tuple[TryOut, ...]:
    """Each try from the record's `try:<n>` fields ("<started ms> <worker>") and `try_error:<n>` fields."""
    tries = []
    for name, value in record.items():
        kind, _, number = name.partition(":")
        if kind != Field.TRY or not number.isdigit():
            continue
        started_ms, _, worker = value.decode().partition(" ")
        error = record.get(try_error_field(number))
        tries.append(
            TryOut(
                attempt=int(number),
                started_at=datetime.fromtimestamp(int(started_ms) / 1000, tz=UTC),
                worker=worker or None,
                error=error.decode() if error else None,
            )
        )
    return tuple(sorted(tries, key=lambda t: t.attempt))


async def _read_pipeline(redis: ArqRedis, job_ids: list[str]) -> list[Any]:
    """The READ script's replies for each id, in one round trip."""

    def build(pipe: Pipeline) -> None:
        for job_id in job_ids:
            _queue_reads(pipe, job_id)

    return await run_pipeline(redis, build, [READ])


async def read_snapshot(redis: ArqRedis, job_id: str) -> Snapshot:
    """The job's snapshot; raises `JobNotFound` when neither arq nor our record knows the id."""
    (replies,) = await _read_pipeline(redis, [job_id])
    snapshot = _snapshot(job_id, replies)
    if snapshot is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return snapshot


async def iterate_snapshots(redis: ArqRedis, index: str) -> AsyncIterator[Snapshot]:
    """Every job of `index` still known, newest first, a batch per round trip (for bulk actions)."""
    after: tuple[int, str] | None = None
    while batch := await _index_batch(redis, index, after):
        replies = await _read_pipeline(redis, [job_id for job_id, _ in batch])
        for (job_id, score), job_replies in zip(batch, replies, strict=True):
            after = (int(score), job_id)
            if (snapshot := _snapshot(job_id, job_replies)) is not None:
                yield snapshot


async def forget_job(redis: ArqRedis, view: JobView) -> None:
    """Delete a finished job: its result, record and every listing entry (arq's keys of a running job stay)."""
    job = JobKeys(view.id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(job.result, job.record)
        indexes.forget(pipe, view)
        await pipe.execute()


async def read_job(redis: ArqRedis, job_id: str) -> JobView:
    return (await read_snapshot(redis, job_id)).view


def check_visible(view: JobView, user: User | None, name: str | None = None) -> None:
    """Ownerless jobs are visible to anyone, owned ones to their owner and admins; with `name`, a job of
    another kind is reported as not found (a report id is not a task id)."""
    if name is not None and view.name != name:
        raise JobNotFound(f"no {name} job with id {view.id!r}")
    if not _may_see(user, view.owner):
        raise NotOwner("this job belongs to another user")


async def read_visible_job(redis: ArqRedis, job_id: str, user: User | None, name: str | None = None) -> JobView:
    view = await read_job(redis, job_id)
    check_visible(view, user, name)
    return view


@dataclass(frozen=True, slots=True)
class TaskState:
    """What `GET /tasks/{id}` shows: the status, the return value or the error."""

    status: Status
    result: Any
    error: ErrorOut | None


# The reads of `read_task_state` in one command: a finished job's result and owner, else every key the status table
# needs. One command instead of six is most of what the API's most polled read costs redis-py to pack and parse.
# KEYS: result, in-progress, retry counter, definition, record. ARGV: id.
TASK_STATE = LuaScript(
    "read_task_state",
    lua(
        LUA_QUEUE_KEY
        + """
local owner, error_type, error_message = unpack(redis.call('HMGET', KEYS[5], '$owner', '$error_type', '$error_message'))
local result = redis.call('GET', KEYS[1])
if result then return {result, 0, false, false, 0, owner, false, false} end
return {false, redis.call('EXISTS', KEYS[2]), redis.call('ZSCORE', queue_key(KEYS[5]), ARGV[1]),
        redis.call('GET', KEYS[3]), redis.call('EXISTS', KEYS[4]), owner, error_type, error_message}
"""
    ),
)


async def read_task_state(redis: ArqRedis, job_id: str, user: User | None) -> TaskState:
    """The status alone, for the most polled read of the API: the same keys and table as `read_job`, but no job
    definition to decode, no record to read beyond its owner, and no full view to build."""
    job = JobKeys(job_id)
    script_keys = [job.result, job.in_progress, job.retry, job.definition, job.record]
    replies = await TASK_STATE.run(redis, script_keys, [job_id])
    raw_result, in_progress, score, tries, has_definition, owner, error_type, error_message = replies
    outcome = _outcome(job_id, raw_result, bool(has_definition), in_progress, score, tries)
    if outcome.status is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    if not _may_see(user, owner.decode() if owner else None):
        raise NotOwner("this job belongs to another user")
    error = outcome.error
    if outcome.status is Status.RETRY and error_type is not None:
        error = ErrorOut(type=error_type.decode(), message=(error_message or b"").decode())
    return TaskState(outcome.status, outcome.result.get("r") if outcome.success else None, error)


# Listing -------------------------------------------------------------------------------------------------------

LIST_BATCH = 100
# A status filter may skip many jobs; one request reads at most this many before answering with a cursor.
LIST_SCAN_BUDGET = 1000


def encode_cursor(score: float, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{int(score)}:{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        score, job_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":", 1)
        return int(score), job_id
    except (ValueError, UnicodeDecodeError) as e:
        raise BadCursor("invalid cursor") from e


async def _index_batch(
    redis: ArqRedis, index: str, after: tuple[int, str] | None, since_us: int | None = None, until_us: int | None = None
) -> list[tuple[str, float]]:
    """The next ids by score, newest first, strictly after the cursor (ties broken by id, as Redis does), within
    the score range."""
    top: int | str = after[0] if after else "+inf"
    if until_us is not None and (top == "+inf" or until_us < int(top)):
        top = until_us
    bottom: int | str = since_us if since_us is not None else "-inf"
    raw = await redis.zrevrangebyscore(index, top, bottom, start=0, num=LIST_BATCH + 50, withscores=True)
    entries = [(member.decode(), score) for member, score in raw]
    if after:
        entries = [(i, s) for i, s in entries if s < after[0] or i < after[1]]
    return entries[:LIST_BATCH]


async def list_jobs(
    redis: ArqRedis,
    index: str,
    *,
    status: Status | None = None,
    limit: int,
    cursor: str | None,
    where: JobFilter | None = None,
) -> tuple[list[JobView], str | None]:
    """A page of jobs from `index`, newest first; the cursor is None once the index is exhausted.

    Pick the index that holds only the jobs wanted (a kind's, a queue's, a user's, the failed ones): then every
    entry read is one answered. Whatever else `where` asks is checked per job, reading at most LIST_SCAN_BUDGET
    entries per request: a short page then comes with a cursor to go on from."""
    where = where or JobFilter(status=status)
    after = decode_cursor(cursor) if cursor else None
    views: list[JobView] = []
    scanned = 0
    while len(views) < limit and scanned < LIST_SCAN_BUDGET:
        batch = await _index_batch(redis, index, after, where.since_us, where.until_us)
        if not batch:
            return views, None
        replies = await _read_pipeline(redis, [job_id for job_id, _ in batch])
        gone = []
        for (job_id, score), job_replies in zip(batch, replies, strict=True):
            scanned += 1
            after = (int(score), job_id)
            snapshot = _snapshot(job_id, job_replies)
            if snapshot is None:
                gone.append(job_id)
            elif where.keeps(snapshot.view):
                views.append(snapshot.view)
                if len(views) == limit:
                    break
        if gone:  # expired jobs leave the index as they are met
            await redis.zrem(index, *gone)
    return views, encode_cursor(*after) if after else None


async def find_by_prefix(redis: ArqRedis, prefix: str, limit: int) -> list[JobView]:
    """The jobs whose id starts with `prefix` (a whole id, or the first characters the lists show), by id."""
    ids = await redis.zrangebylex(
        keys.IDS_INDEX, b"[" + prefix.encode(), b"[" + prefix.encode() + b"\xff", start=0, num=limit
    )
    if not ids:
        return []
    job_ids = [raw.decode() for raw in ids]
    replies = await _read_pipeline(redis, job_ids)
    found = [_snapshot(job_id, job_replies) for job_id, job_replies in zip(job_ids, replies, strict=True)]
    return [snapshot.view for snapshot in found if snapshot is not None]
