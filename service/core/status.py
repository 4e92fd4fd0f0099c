"""The contract's status words and the one table that maps arq's job state onto them."""

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Celery's status words, so clients written for a Celery backend keep working."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"


TERMINAL_STATUSES = frozenset({Status.SUCCESS, Status.FAILURE, Status.REVOKED})

# The exception types arq records when a job is aborted before or while it runs.
ABORT_ERROR_TYPES = frozenset({"CancelledError", "JobAborted"})


@dataclass(frozen=True, slots=True)
class ArqState:
    """What Redis says about one job id, read from arq's own keys."""

    has_definition: bool  # arq:job:<id> exists (queued, deferred or running)
    in_progress: bool  # arq:in-progress:<id> exists (a worker has claimed it)
    queued: bool  # the id is in the queue's sorted set
    tries_started: int  # arq:retry:<id>: how many tries a worker has begun
    success: bool | None = None  # from arq:result:<id>; None while there is no result
    error_type: str | None = None


def contract_status(state: ArqState) -> Status | None:
    """Map arq's keys for one job to the contract's status; None means the id is unknown or expired."""
    if state.success is True:
        return Status.SUCCESS
    if state.success is False:
        return Status.REVOKED if state.error_type in ABORT_ERROR_TYPES else Status.FAILURE
    if state.in_progress:
        return Status.STARTED
    if state.queued:
        # Back in the queue after a try began: the try failed (or its worker died) and another is scheduled.
        return Status.RETRY if state.tries_started > 0 else Status.PENDING
    if state.has_definition:
        # Between arq's WATCH/MULTI steps the definition exists while the id is briefly outside the queue.
        return Status.PENDING
    return None
