"""Names of the Redis keys this service adds beside arq's own (`arq:*`), and the queues' keys."""

from arq.constants import default_queue_name

DEFAULT_QUEUE = "default"
QUEUE_KEY_PREFIX = default_queue_name + ":"


def queue_key(queue: str) -> str:
    """The sorted set of a queue: arq's own default queue for `default` (so arq's own clients and `arq --check` see
    it), `arq:queue:<name>` for the others."""
    return default_queue_name if queue == DEFAULT_QUEUE else QUEUE_KEY_PREFIX + queue


PREFIX = "fj:"
WAKEUP_CHANNEL = PREFIX + "wakeup"
ABORT_CHANNEL = PREFIX + "abort"  # pub/sub: the id of a running job to cancel, for whichever worker runs it
WORKERS_ZSET = PREFIX + "workers"


JOB_RECORD_PREFIX = PREFIX + "job:"


def job_record(job_id: str) -> str:
    """Hash with what arq does not keep: owner, start time, attempt, progress."""
    return JOB_RECORD_PREFIX + job_id


def worker_info(worker_id: str) -> str:
    return f"{PREFIX}worker:{worker_id}"


def idempotency(owner: str | None, key: str) -> str:
    """Scoped to the user; ':' never occurs in a user id, and anonymous callers share the '~' scope."""
    return f"{PREFIX}idem:{owner or '~'}:{key}"


def effect_done(job_id: str, effect: str) -> str:
    """Set once a job's side effect has happened, so a re-run skips it."""
    return f"{PREFIX}done:{job_id}:{effect}"


ALL_JOBS_INDEX = PREFIX + "idx:all"  # every job id by enqueue time (µs)
FAILED_INDEX = PREFIX + "idx:failed"  # every job that ended FAILURE, by the time it ended (µs), for FAILED_TTL


IDS_INDEX = PREFIX + "idx:ids"  # every job id, all with score 0: ZRANGEBYLEX finds the ids with a prefix


def kind_index(name: str) -> str:
    """Sorted set of the job ids of one kind, by enqueue time (µs): `GET /jobs?name=`."""
    return f"{PREFIX}idx:kind:{name}"


def queue_index(queue: str) -> str:
    """Sorted set of the job ids of one queue, by enqueue time (µs): `GET /jobs?queue=`."""
    return f"{PREFIX}idx:queue:{queue}"


def user_failed_index(owner: str) -> str:
    """A user's jobs that ended FAILURE, by the time they ended (µs)."""
    return f"{PREFIX}idx:failed:user:{owner}"


def user_jobs_index(owner: str) -> str:
    """Sorted set of a user's job ids by enqueue time (µs): what `GET /jobs` pages through."""
    return f"{PREFIX}idx:user:{owner}"


def active_jobs(owner: str) -> str:
    """Sorted set of a user's jobs that may still be pending or running, for MAX_ACTIVE_JOBS_PER_USER."""
    return f"{PREFIX}active:{owner}"


def job_events(job_id: str) -> str:
    """Pub/sub channel: a message on every change of the job's status or progress."""
    return f"{PREFIX}events:{job_id}"


METRICS_ENQUEUED = PREFIX + "metrics:enqueued"  # hash: job name -> count
METRICS_OUTCOMES = PREFIX + "metrics:outcomes"  # hash: "<name>|<outcome>" -> count
METRICS_WAITS = PREFIX + "metrics:waits"  # hash: "<name>|<bucket le>" / "<name>|sum": due to start
METRICS_DURATIONS = PREFIX + "metrics:durations"  # hash: "<name>|<bucket le>" / "<name>|sum" / "<name>|count"


def finished_per_minute(minute: int) -> str:
    """Jobs that reached a terminal status in that minute (Unix time // 60), for the throughput chart."""
    return f"{PREFIX}stats:finished:{minute}"


def failed_per_minute(minute: int) -> str:
    """Jobs that ended FAILURE in that minute."""
    return f"{PREFIX}stats:failed:{minute}"


def waits_per_minute(minute: int) -> str:
    """Hash: wait bucket (`le`, seconds) -> tries that started in that minute after waiting that long."""
    return f"{PREFIX}stats:waits:{minute}"


def depth_per_minute(queue: str, minute: int) -> str:
    """The queue's due jobs, as a worker's heartbeat last saw them in that minute."""
    return f"{PREFIX}stats:depth:{queue}:{minute}"
