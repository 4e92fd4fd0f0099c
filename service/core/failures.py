"""Exceptions jobs raise on purpose, and what of any exception a client may see: type and a safe message."""

import asyncio

from arq.jobs import SerializationError
from arq.worker import JobExecutionFailed, RetryJob


class PublicFailure(Exception):
    """A failure whose message is written for the client (no paths, arguments or internals)."""


class PermanentFailure(PublicFailure):
    """Fails the job for good (a mail server's bounce, say): no further try."""


class TransientFailure(PublicFailure):
    """Worth another try: retried with exponential backoff and jitter up to the job kind's limit."""


class JobAborted(PublicFailure):
    """Ends a job aborted through the API before its code could start (status REVOKED); a running one is cancelled
    the way arq cancels an aborted job."""


UNEXPECTED = "the job failed unexpectedly; the worker's log has the details"
# Raised by arq itself, with messages it writes (no user data in them).
_ARQ_MESSAGES = (JobExecutionFailed, SerializationError, RetryJob)


def public_error(exc: BaseException) -> dict[str, str]:
    """`{"type", "message"}` for an exception, with the message kept only where it is known to be safe."""
    if isinstance(exc, (PublicFailure, *_ARQ_MESSAGES)):
        message = str(exc)
    elif isinstance(exc, asyncio.CancelledError):
        message = "the job was aborted"
    elif isinstance(exc, TimeoutError):
        message = "the job ran past its timeout"
    else:
        message = UNEXPECTED
    return {"type": type(exc).__name__, "message": message}
