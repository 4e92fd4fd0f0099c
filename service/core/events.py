"""A job's changes: announced on its pub/sub channel (`announce`, the one place Python says "the job changed"; the
Lua scripts use `record.LUA_ANNOUNCE`), and followed as a stream of views (`job_events`, for SSE) or by many
waiters on one subscription (`JobChanges`, for the Python client's handles). No polling."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline, PubSub
from redis.exceptions import RedisError

from service.core import keys
from service.core.aio import reraise_cancellation
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


class JobChanges:
    """One pub/sub connection that follows the changes of many jobs at once (the Python client's `result()`s): a
    thousand handles waiting cost one connection and a subscription each, not a connection each.

        async with changes.watch(job_id) as changed:   # subscribed, and confirmed by the server
            ...read the job...; await changed.wait()    # set on the job's next change message
    """

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchers: dict[bytes, list[asyncio.Event]] = {}
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._subscribing = asyncio.Lock()

    @asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        channel = keys.job_events(job_id).encode()
        changed = asyncio.Event()
        watchers = self._watchers.setdefault(channel, [])
        watchers.append(changed)
        try:
            confirmed = self._confirmations.get(channel)
            if confirmed is None:
                confirmed = self._confirmations[channel] = asyncio.get_running_loop().create_future()
                await self._subscribe(channel)
            # Bounded: without a confirmation the caller's re-reads (every RESYNC_AFTER_S) still see the end.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_CONFIRM_S)
            yield changed
        finally:
            watchers.remove(changed)
            if not watchers:
                del self._watchers[channel]
                self._confirmations.pop(channel, None)
                if self._pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.unsubscribe(channel)

    async def _subscribe(self, channel: bytes) -> None:
        # One at a time: redis-py's PubSub takes a connection at its first command, and two first commands at once
        # would each take one, subscribing on a connection nobody reads.
        async with self._subscribing:
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub()
            await self._pubsub.subscribe(channel)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(self._pubsub), name="job-changes")

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(timeout=RESYNC_AFTER_S)
            except (RedisError, OSError) as e:
                reraise_cancellation(e)
                # Lost: every watcher reads its job again; redis-py subscribes again as it reconnects.
                for watchers in self._watchers.values():
                    for changed in watchers:
                        changed.set()
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            channel = message["channel"]
            if message["type"] == "subscribe":
                confirmed = self._confirmations.get(channel)
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)
            elif message["type"] == "message":
                for changed in self._watchers.get(channel, ()):
                    changed.set()

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait({self._reader}, timeout=2)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
