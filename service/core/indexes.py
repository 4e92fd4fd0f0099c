"""Where a job lives in Redis besides its record: arq's keys of one job, and every index that lists it.

This module is the one owner of the listings: which indexes a job enters when it is queued (the enqueue script
writes the ones named here), when a failure is listed and for how long, which index a listing reads, what a delete
removes and what the housekeeping cron trims. Adding an index is a change to this file (and to the enqueue
script's meta, which takes its keys from `listed_in`).

Every index is a sorted set scored in microseconds: the enqueue time (the failures' index: the time it failed), so
jobs queued in the same millisecond still list in order. The id index alone scores 0: `ZRANGEBYLEX` finds ids by
prefix.
"""

from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from redis.asyncio.client import Pipeline

from service.core import keys
from service.core.status import Status
from service.core.views import JobView

TRIM_BATCH = 1000


@dataclass(frozen=True, slots=True)
class JobKeys:
    """The keys of one job: arq's own four, and this service's record and events channel."""

    job_id: str

    @property
    def definition(self) -> str:
        return job_key_prefix + self.job_id

    @property
    def result(self) -> str:
        return result_key_prefix + self.job_id

    @property
    def in_progress(self) -> str:
        return in_progress_key_prefix + self.job_id

    @property
    def retry(self) -> str:
        return retry_key_prefix + self.job_id

    @property
    def record(self) -> str:
        return keys.job_record(self.job_id)

    @property
    def events(self) -> str:
        return keys.job_events(self.job_id)


def listed_in(name: str, queue: str) -> tuple[str, str]:
    """The kind's and the queue's index of a job (the enqueue script adds it to these, to the all-jobs and id
    indexes, and to its owner's)."""
    return keys.kind_index(name), keys.queue_index(queue)


def list_job(pipe: Pipeline, job_id: str, name: str, queue: str, score_us: int) -> None:
    """List a job that another client queued (no enqueue script ran): every index the script would have added an
    ownerless job to."""
    for index in (keys.ALL_JOBS_INDEX, *listed_in(name, queue)):
        pipe.zadd(index, {job_id: score_us})
    pipe.zadd(keys.IDS_INDEX, {job_id: 0})


def list_failure(tr: Pipeline, job_id: str, owner: str | None, now_us: int, ttl_s: int) -> None:
    """In the transaction that finishes a job FAILURE: list it among the failures (its owner's too) for `ttl_s`."""
    tr.zadd(keys.FAILED_INDEX, {job_id: now_us})
    if owner:
        index = keys.user_failed_index(owner)
        tr.zadd(index, {job_id: now_us})
        tr.zremrangebyscore(index, "-inf", now_us - ttl_s * 1_000_000)
        tr.expire(index, ttl_s)


def forget(pipe: Pipeline, view: JobView) -> None:
    """Take a finished job out of every index (its result and record are the caller's to delete)."""
    pipe.zrem(keys.ALL_JOBS_INDEX, view.id)
    pipe.zrem(keys.FAILED_INDEX, view.id)
    for index in listed_in(view.name, view.queue):
        pipe.zrem(index, view.id)
    pipe.zrem(keys.IDS_INDEX, view.id)
    if view.owner is not None:
        pipe.zrem(keys.user_jobs_index(view.owner), view.id)
        pipe.zrem(keys.user_failed_index(view.owner), view.id)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What `GET /jobs` keeps of the index it pages through: a status, a kind, a queue, an owner, and an index score
    range (µs; an enqueue time, or for the failed-jobs index the time it failed)."""

    status: Status | None = None
    name: str | None = None
    queue: str | None = None
    owner: str | None = None
    since_us: int | None = None
    until_us: int | None = None

    def keeps(self, view: JobView) -> bool:
        return (
            (self.status is None or view.status is self.status)
            and (self.name is None or view.name == self.name)
            and (self.queue is None or view.queue == self.queue)
            and (self.owner is None or view.owner == self.owner)
        )


def index_for(where: JobFilter) -> str:
    """The index that holds only what `where` asks for, as far as one index can: then no entry read is wasted."""
    if where.status is Status.FAILURE:  # kept for FAILED_TTL in an index of their own, however many jobs ran since
        return keys.FAILED_INDEX if where.owner is None else keys.user_failed_index(where.owner)
    if where.owner is not None:
        return keys.user_jobs_index(where.owner)
    if where.name is not None:
        return keys.kind_index(where.name)
    if where.queue is not None:
        return keys.queue_index(where.queue)
    return keys.ALL_JOBS_INDEX


async def trim(redis: ArqRedis, names: list[str], queues: list[str], cutoff_us: int, failed_cutoff_us: int) -> int:
    """Remove the entries of jobs enqueued before `cutoff_us` (failures: failed before `failed_cutoff_us`), whose
    records are gone; how many left the all-jobs index. Ids leave the id index with them, but for a failure's,
    which stays findable by id until its record goes. A user's index is trimmed by the enqueue script instead."""
    removed = 0
    while expired := await redis.zrangebyscore(keys.ALL_JOBS_INDEX, "-inf", cutoff_us, start=0, num=TRIM_BATCH):
        failed = await redis.zmscore(keys.FAILED_INDEX, expired)
        gone = [job_id for job_id, kept in zip(expired, failed, strict=True) if kept is None]
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.ALL_JOBS_INDEX, *expired)
            if gone:
                pipe.zrem(keys.IDS_INDEX, *gone)
            await pipe.execute()
        removed += len(expired)
    while expired := await redis.zrangebyscore(keys.FAILED_INDEX, "-inf", failed_cutoff_us, start=0, num=TRIM_BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.FAILED_INDEX, *expired)
            pipe.zrem(keys.IDS_INDEX, *expired)
            await pipe.execute()
    async with redis.pipeline(transaction=False) as pipe:
        for index in [*map(keys.kind_index, names), *map(keys.queue_index, queues)]:
            pipe.zremrangebyscore(index, "-inf", cutoff_us)
        await pipe.execute()
    return removed
