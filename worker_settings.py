"""The arq worker: `arq worker_settings.WorkerSettings`. Declarative; the jobs live in `service.engine`."""

from service.core import serialization
from service.core.connections import worker_redis_settings
from service.engine import CRON_JOBS, FUNCTIONS, MAX_JOBS, POLL_DELAY_S, after_job_end, shutdown, startup
from service.engine.dequeue import install_batch_claims
from service.engine.wakeup import install_wakeup_poll, use_uvloop
from service.logs import configure_logging, quiet_arq_job_lines
from service.settings import get_settings

configure_logging()
quiet_arq_job_lines()
install_wakeup_poll()
install_batch_claims()
use_uvloop()
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
    # An upper bound only: enqueues wake idle workers through pub/sub within a millisecond (service.engine.wakeup).
    poll_delay = POLL_DELAY_S
    max_jobs = MAX_JOBS
    job_timeout = 300
    max_tries = 5
    keep_result = _settings.result_ttl
    # Aborts reach running jobs through pub/sub (service.engine.aborts) instead of arq's check on every loop.
    allow_abort_jobs = False
    # arq's default, 0, cancels running jobs on SIGTERM; this lets them finish first (a deploy loses no work).
    job_completion_wait = _settings.shutdown_grace_s
    # arq's default of 3600 s keeps `arq --check` passing for an hour after the last worker died.
    health_check_interval = 5
