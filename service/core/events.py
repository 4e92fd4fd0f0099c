"""A job's changes: announced on its pub/sub channel (`announce`, the one place Python says "the job changed"; the
Lua scripts use `record.LUA_ANNOUNCE`), and followed as a stream of views (no polling)."""

from collections.abc import AsyncIterator

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline, PubSub

from service.core import keys
from service.core.exceptions import JobNotFound
from service.core.reads import read_job
from service.core.status import TERMINAL_STATUSES
from service.core.views import JobView


def announce(pipe: Pipeline, job_id: str) -> None:
    """Queue the "job changed" message on `pipe`: stream subscribers read the job again."""
    pipe.publish(keys.job_events(job_id), b"")


# arq fails a job without calling any hook in a few cases (its definition expired or unreadable, its function
# unknown, its tries used up by worker crashes). After this long without a message the view is read again, so
# such an end still closes the stream. Not a polling loop: a stream that hears its changes never waits this out.
RESYNC_AFTER_S = 10.0
SUBSCRIBE_CONFIRM_S = 2.0


async def _next_change(pubsub: PubSub) -> None:
    """Wait for a change message, then take every message already waiting: a slow client gets the latest view
    once, not a backlog of stale ones."""
    if await pubsub.get_message(ignore_subscribe_messages=True, timeout=RESYNC_AFTER_S) is None:
        return
    while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0) is not None:
        pass


async def job_events(redis: ArqRedis, job_id: str, first: JobView | None = None) -> AsyncIterator[JobView]:
    """The job's view now (`first`, if the caller has just read it), then after every change of status or
    progress, until a terminal status."""
    last = first
    if first is not None:
        yield first  # at once; a change from now on is seen by the read after subscribing
        if first.status in TERMINAL_STATUSES:
            return  # a finished job needs no subscription
    # The subscription is closed (and its connection returned) when the client goes away: FastAPI cancels
    # this generator, and the context manager unsubscribes.
    async with redis.pubsub() as pubsub:
        # Subscribe before the next read, so no change can fall between the two. redis-py's subscribe() only
        # sends the command: wait for the server's confirmation, or a change could still slip through.
        await pubsub.subscribe(keys.job_events(job_id))
        await pubsub.get_message(timeout=SUBSCRIBE_CONFIRM_S)
        while True:
            try:
                view = await read_job(redis, job_id)
            except JobNotFound:
                return
            if last is None or (view.status, view.progress) != (last.status, last.progress):
                yield view
                last = view
            if view.status in TERMINAL_STATUSES:
                return
            await _next_change(pubsub)
