"""The arq worker: `arq worker_settings.WorkerSettings`. Declarative; the jobs live in `service.jobs`."""

from service import serialization
from service.connections import worker_redis_settings
from service.jobs import CRON_JOBS, FUNCTIONS, after_job_end, shutdown, startup
from service.jobs.wakeup import install_wakeup_poll
from service.logs import configure_logging
from service.settings import get_settings

configure_logging()
install_wakeup_poll()
_settings = get_settings()


class WorkerSettings:
    functions = FUNCTIONS
    cron_jobs = CRON_JOBS
    on_startup = startup
    on_shutdown = shutdown
    after_job_end = after_job_end
    redis_settings = worker_redis_settings(_settings)
    job_serializer = serialization.job_serializer
    job_deserializer = serialization.job_deserializer
    # An upper bound only: enqueues wake idle workers through pub/sub within a millisecond (service.jobs.wakeup).
    poll_delay = 0.25
    max_jobs = 100
    job_timeout = 300
    max_tries = 5
    keep_result = _settings.result_ttl
    allow_abort_jobs = True
    # arq's default, 0, cancels running jobs on SIGTERM; this lets them finish first (a deploy loses no work).
    job_completion_wait = _settings.shutdown_grace_s
    # arq's default of 3600 s keeps `arq --check` passing for an hour after the last worker died.
    health_check_interval = 5
