"""Names of the Redis keys this service adds beside arq's own (`arq:*`)."""

PREFIX = "fj:"
WAKEUP_CHANNEL = PREFIX + "wakeup"
WORKERS_ZSET = PREFIX + "workers"


def job_record(job_id: str) -> str:
    """Hash with what arq does not keep: owner, start time, attempt, progress."""
    return f"{PREFIX}job:{job_id}"


def worker_info(worker_id: str) -> str:
    return f"{PREFIX}worker:{worker_id}"


def idempotency(owner: str | None, key: str) -> str:
    """Scoped to the user; ':' never occurs in a user id, and anonymous callers share the '~' scope."""
    return f"{PREFIX}idem:{owner or '~'}:{key}"


def effect_done(job_id: str, effect: str) -> str:
    """Set once a job's side effect has happened, so a re-run skips it."""
    return f"{PREFIX}done:{job_id}:{effect}"
