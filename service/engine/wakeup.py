"""The worker's subscription: wake-ups the moment a job is queued, and aborts of running jobs.

arq has no blocking dequeue: its worker polls the queue every `poll_delay` seconds. The enqueue script publishes on
`keys.WAKEUP_CHANNEL`, and the worker (`service.engine.worker`) ends its wait between polls as soon as a message
arrives, so `poll_delay` remains only the upper bound, for deferred jobs and retries. The same subscription carries
aborts of running jobs (`keys.ABORT_CHANNEL`, `service.engine.aborts`).
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from service.core import keys
from service.core.aio import reraise_cancellation

ABORT_CHANNEL = keys.ABORT_CHANNEL.encode()

logger = logging.getLogger(__name__)

# How often a quiet subscription looks at `stop` (a local timer: no Redis command).
LISTEN_TICK_S = 1.0


def _dispatch(message: dict[str, Any], wake: Callable[[], None], abort: Callable[[str], object]) -> bool:
    """Act on one message of the subscription: wake the worker, or abort a job. True if it confirms a subscription."""
    if message["type"] == "subscribe":
        return True
    if message["type"] == "message":
        if message["channel"] == ABORT_CHANNEL:
            abort(message["data"].decode())
        else:
            wake()
    return False


async def listen(
    redis: ArqRedis,
    stop: asyncio.Event,
    wake: Callable[[], None],
    abort: Callable[[str], object],
    subscribed: asyncio.Event | None = None,
) -> None:
    """Until `stop` is set, wake the worker on enqueues and cancel the jobs the API aborts; resubscribe after a
    Redis outage. `subscribed` is set once the server has confirmed the subscriptions: the worker's startup waits
    for it, so that it claims no job whose abort could be published before anyone listens.

    It stops on `stop` rather than by cancellation alone: a cancellation inside redis-py's read can be turned into
    an error by the subscription's own cleanup, and a worker's shutdown then waited for ever on this task (seen in
    the test suite). Each quiet read ends after LISTEN_TICK_S to look at `stop`.
    """
    while not stop.is_set():
        try:
            async with redis.pubsub() as pubsub:
                channels = (keys.WAKEUP_CHANNEL, keys.ABORT_CHANNEL)
                await pubsub.subscribe(*channels)
                confirmed = 0
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=LISTEN_TICK_S)
                    if message is None or not _dispatch(message, wake, abort):
                        continue
                    # redis-py's subscribe() only sends the command: listening starts with the confirmations.
                    confirmed += 1
                    if confirmed == len(channels):
                        wake()  # jobs may have been queued while we were not listening
                        if subscribed is not None:
                            subscribed.set()
        except (RedisError, OSError) as e:
            if stop.is_set():
                return
            reraise_cancellation(e)
            logger.warning("wake-up subscription lost (%r); polling every poll_delay until it is back", e)
            await asyncio.sleep(1)
