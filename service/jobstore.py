"""Read one job's state from arq's keys and this service's record, in one round trip, as a `JobView`."""

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from arq.connections import ArqRedis
from arq.constants import (
    default_queue_name,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)

from . import keys
from .auth import User
from .errors import JobNotFound, NotOwner
from .schemas import ErrorOut, JobView, ProgressOut
from .serialization import job_deserializer
from .status import ArqState, contract_status

logger = logging.getLogger(__name__)

# Longer ids are refused before they reach Redis; arq's own ids are 32 hex characters.
MAX_JOB_ID_LENGTH = 128
UNREADABLE = "<unreadable>"


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


def _progress(record: dict[bytes, bytes]) -> ProgressOut | None:
    total = record.get(b"progress_total")
    if total is None:
        return None
    return ProgressOut(current=int(record.get(b"progress_current", b"0")), total=int(total))


async def read_job(redis: ArqRedis, job_id: str) -> JobView:
    """The job's view; raises `JobNotFound` when neither arq nor our record knows the id."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(job_key_prefix + job_id)
        pipe.get(result_key_prefix + job_id)
        pipe.exists(in_progress_key_prefix + job_id)
        pipe.zscore(default_queue_name, job_id)
        pipe.get(retry_key_prefix + job_id)
        pipe.hgetall(keys.job_record(job_id))
        raw_def, raw_result, in_progress, score, tries, record = await pipe.execute()

    definition = _load(raw_def, job_id, "job")
    result = _load(raw_result, job_id, "result")
    success = None if result is None else bool(result.get("s", False))
    error = None if result is None or success else _error(result)
    state = ArqState(
        has_definition=definition is not None,
        in_progress=bool(in_progress),
        queued=score is not None,
        tries_started=int(tries or 0),
        success=success,
        error_type=error.type if error else None,
    )
    status = contract_status(state)
    if status is None:
        raise JobNotFound(f"no job with id {job_id!r}")

    source = result or definition or {}
    owner = record.get(b"owner")
    started_ms = (result or {}).get("st") or record.get(b"started_at")
    return JobView(
        id=job_id,
        name=str(source.get("f") or record.get(b"name", b"").decode() or UNREADABLE),
        status=status,
        owner=owner.decode() if owner else None,
        enqueued_at=_ms_to_datetime(source.get("et") or record.get(b"enqueued_at")),
        started_at=_ms_to_datetime(started_ms),
        finished_at=_ms_to_datetime((result or {}).get("ft")),
        attempt=int((result or {}).get("t") or tries or 0),
        progress=_progress(record),
        result=result.get("r") if result and success else None,
        error=error,
    )


async def read_visible_job(redis: ArqRedis, job_id: str, user: User | None, name: str | None = None) -> JobView:
    """The job's view if `user` may see it: ownerless jobs to anyone, owned ones to their owner and admins.

    With `name`, a job of another kind is reported as not found (a report id is not a task id)."""
    job = await read_job(redis, job_id)
    if name is not None and job.name != name:
        raise JobNotFound(f"no {name} job with id {job_id!r}")
    if not (user.may_see(job.owner) if user else job.owner is None):
        raise NotOwner("this job belongs to another user")
    return job
