"""The arq worker: `arq worker_settings.WorkerSettings`. Declarative: the jobs are the declared kinds
(`service.kinds`), the engine is `service.engine.ServiceWorker`."""

import arq.worker

from service.core import serialization
from service.core.connections import worker_redis_settings
from service.engine import (
    HEALTH_CHECK_INTERVAL_S,
    JOB_TIMEOUT_S,
    MAX_JOBS,
    MAX_TRIES,
    POLL_DELAY_S,
    ServiceWorker,
    cron_jobs,
    functions,
    use_uvloop,
)
from service.kinds import load_kinds, queues_of
from service.logs import configure_logging, quiet_arq_job_lines
from service.settings import get_settings

# arq's CLI builds `arq.worker.Worker` by name; this one line makes it build the service's subclass.
arq.worker.Worker = ServiceWorker  # type: ignore[misc]

configure_logging()
quiet_arq_job_lines()
use_uvloop()
_settings = get_settings()
_kinds = load_kinds(_settings.job_kinds)


class WorkerSettings:
    functions = functions(_kinds)
    cron_jobs = cron_jobs(_kinds)
    settings = _settings
    # WORKER_QUEUES, in priority order; by default every queue a kind names.
    queues = _settings.worker_queues or queues_of(_kinds)
    redis_settings = worker_redis_settings(_settings)
    job_serializer = serialization.job_serializer
    job_deserializer = serialization.job_deserializer
    # An upper bound only: enqueues wake idle workers through pub/sub within a millisecond (service.engine.wakeup).
    poll_delay = POLL_DELAY_S
    max_jobs = MAX_JOBS
    job_timeout = JOB_TIMEOUT_S
    max_tries = MAX_TRIES
    keep_result = _settings.result_ttl
    # arq's default, 0, cancels running jobs on SIGTERM; this lets them finish first (a deploy loses no work).
    job_completion_wait = _settings.shutdown_grace_s
    health_check_interval = HEALTH_CHECK_INTERVAL_S  # arq's 3600 s would keep `arq --check` passing for an hour
