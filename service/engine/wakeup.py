"""Wake idle workers the moment a job is queued, instead of after arq's poll delay.

arq has no blocking dequeue: its worker loop (`arq.worker.Worker.main`) polls the queue every `poll_delay`
seconds through the module-level generator `arq.worker.poll`. We replace that generator with one that also ends
its wait as soon as a message arrives on `keys.WAKEUP_CHANNEL` (published in the enqueue transaction) or a job
of this process ends while the worker was full. `poll_delay` remains the upper bound, for deferred jobs and retries.
The same subscription carries aborts of running jobs (`service.engine.aborts`).
"""

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncGenerator
from typing import Any

import arq.worker
import uvloop
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from service.core import keys
from service.core.aio import reraise_cancellation
from service.engine import aborts

ABORT_CHANNEL = keys.ABORT_CHANNEL.encode()

logger = logging.getLogger(__name__)

_events: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event]" = weakref.WeakKeyDictionary()


def _event() -> asyncio.Event:
    """One wake-up event per event loop: every worker running in this loop wakes on it."""
    loop = asyncio.get_running_loop()
    event = _events.get(loop)
    if event is None:
        event = _events[loop] = asyncio.Event()
    return event


def wake_local() -> None:
    _event().set()


async def poll(step: float = 0.5) -> AsyncGenerator[float, None]:
    """Drop-in for `arq.worker.poll`: yields at most every `step` seconds, and at once after a wake-up."""
    loop = asyncio.get_running_loop()
    event = _event()
    task = asyncio.current_task()
    start = loop.time()
    while True:
        if task is not None and task.cancelling():
            # The worker was told to stop, but the CancelledError never reached its loop: Python 3.11's
            # asyncio.wait_for (which redis-py uses for its timeouts) drops it when the awaited operation completes
            # in the same turn (CPython gh-86296). Such a worker went on polling for ever after its SIGTERM.
            raise asyncio.CancelledError
        # Cleared before the worker looks at the queue, so a job queued while it looks wakes it again.
        event.clear()
        before = loop.time()
        yield before - start
        wait = step - (loop.time() - before)
        if wait <= 0 or event.is_set():
            await asyncio.sleep(0)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), wait)


def install_wakeup_poll() -> None:
    """Make arq's worker loop use `poll` above; idempotent."""
    arq.worker.poll = poll


# How often a quiet subscription looks at `stop` (a local timer: no Redis command).
LISTEN_TICK_S = 1.0


def _dispatch(message: dict[str, Any], event: asyncio.Event) -> bool:
    """Act on one message of the subscription: wake the worker, or abort a job. True if it confirms a subscription."""
    if message["type"] == "subscribe":
        return True
    if message["type"] == "message":
        if message["channel"] == ABORT_CHANNEL:
            aborts.abort(message["data"].decode())
        else:
            event.set()
    return False


async def listen(redis: ArqRedis, stop: asyncio.Event, subscribed: asyncio.Event | None = None) -> None:
    """Until `stop` is set, wake the worker on enqueues and cancel the jobs the API aborts; resubscribe after a
    Redis outage. `subscribed` is set once the server has confirmed the subscriptions: the worker's startup waits
    for it, so that it claims no job whose abort could be published before anyone listens.

    It stops on `stop` rather than by cancellation alone: a cancellation inside redis-py's read can be turned into
    an error by the subscription's own cleanup, and a worker's shutdown then waited for ever on this task (seen in
    the test suite). Each quiet read ends after LISTEN_TICK_S to look at `stop`.
    """
    event = _event()
    while not stop.is_set():
        try:
            async with redis.pubsub() as pubsub:
                channels = (keys.WAKEUP_CHANNEL, keys.ABORT_CHANNEL)
                await pubsub.subscribe(*channels)
                confirmed = 0
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=LISTEN_TICK_S)
                    if message is None or not _dispatch(message, event):
                        continue
                    # redis-py's subscribe() only sends the command: listening starts with the confirmations.
                    confirmed += 1
                    if confirmed == len(channels):
                        event.set()  # jobs may have been queued while we were not listening
                        if subscribed is not None:
                            subscribed.set()
        except (RedisError, OSError) as e:
            if stop.is_set():
                return
            reraise_cancellation(e)
            logger.warning("wake-up subscription lost (%r); polling every poll_delay until it is back", e)
            await asyncio.sleep(1)


def use_uvloop() -> None:
    """Run the worker on uvloop, as uvicorn runs the web app: arq takes the policy's loop when it starts."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
