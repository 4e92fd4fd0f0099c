"""Domain exceptions, free of any web framework: the worker raises and imports them too (`service.web.errors` turns
them into HTTP answers)."""


class JobNotFound(Exception):
    """The id is unknown, or the job and its result have expired."""


class NotAuthenticated(Exception):
    """No bearer token, or one that is invalid, expired or forged."""

    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid


class NotOwner(Exception):
    """The job belongs to another user."""


class JobStateConflict(Exception):
    """The job is not in a state that allows this (not finished yet, or already finished)."""


class QuotaExceeded(Exception):
    """The user already has MAX_ACTIVE_JOBS_PER_USER jobs pending or running."""


class BadCursor(ValueError):
    """A listing cursor that this service did not hand out."""


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key sent again with a different request than the one that first used it."""


class NotReplicated(Exception):
    """ENQUEUE_REPLICAS replicas did not confirm the job within ENQUEUE_WAIT_MS: it may be lost in a failover."""
