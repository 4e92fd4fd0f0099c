"""Names of the Redis keys this service adds beside arq's own (`arq:*`)."""

PREFIX = "fj:"
WAKEUP_CHANNEL = PREFIX + "wakeup"
WORKERS_ZSET = PREFIX + "workers"


def job_record(job_id: str) -> str:
    """Hash with what arq does not keep: owner, start time, attempt, progress."""
    return f"{PREFIX}job:{job_id}"


def worker_info(worker_id: str) -> str:
    return f"{PREFIX}worker:{worker_id}"
