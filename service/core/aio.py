"""One asyncio rule the service's background loops share."""

import asyncio


def reraise_cancellation(error: BaseException) -> None:
    """Call inside an `except` for a Redis error. If this task is being cancelled, the error stands in for the
    CancelledError (redis-py's cleanup raised while the cancellation unwound it), and a loop that treated it as an
    outage would go on for ever: raise the cancellation instead. Seen in the test suite as shutdowns that hung."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from error
