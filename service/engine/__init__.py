"""The worker engine: arq's `Worker` subclassed (`worker.ServiceWorker`), and the arq functions and cron jobs made
from the declared job kinds (`runtime`). The web app never imports this package."""

from typing import Any

from arq.cron import CronJob

from service.core import serialization
from service.engine import housekeeping
from service.engine.runtime import functions, scheduled
from service.engine.worker import ServiceWorker, use_uvloop
from service.kinds import Kinds, queues_of
from service.settings import Settings

# Jobs one worker process runs at once (arq's `max_jobs`).
MAX_JOBS = 100
# The longest wait between two looks at the queue: enqueues wake idle workers through pub/sub at once.
POLL_DELAY_S = 0.25
# arq's per-try timeout for a kind that declares none, and its tries for one that declares no max_tries.
JOB_TIMEOUT_S = 300
MAX_TRIES = 5
# arq's default of 3600 s keeps `arq --check` passing for an hour after the last worker died.
HEALTH_CHECK_INTERVAL_S = 5


def cron_jobs(kinds: Kinds) -> list[CronJob]:
    """The scheduled kinds' cron jobs, and the engine's own housekeeping."""
    return [*scheduled(kinds), *housekeeping.CRON_JOBS]


def worker_options(settings: Settings, kinds: Kinds) -> dict[str, Any]:
    """`ServiceWorker`'s keyword arguments for these settings and kinds: what `worker_settings.WorkerSettings`
    declares for arq's CLI, for a worker built in-process (`service.testing`'s `run_jobs`)."""
    return {
        "functions": functions(kinds),
        "cron_jobs": cron_jobs(kinds),
        "settings": settings,
        "queues": settings.worker_queues or queues_of(kinds),
        "job_serializer": serialization.job_serializer,
        "job_deserializer": serialization.job_deserializer,
        "poll_delay": POLL_DELAY_S,
        "max_jobs": MAX_JOBS,
        "job_timeout": JOB_TIMEOUT_S,
        "max_tries": MAX_TRIES,
        "keep_result": settings.result_ttl,
        # arq's default, 0, cancels running jobs on SIGTERM; this lets them finish first (a deploy loses no work).
        "job_completion_wait": settings.shutdown_grace_s,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }


__all__ = [
    "HEALTH_CHECK_INTERVAL_S",
    "JOB_TIMEOUT_S",
    "MAX_JOBS",
    "MAX_TRIES",
    "POLL_DELAY_S",
    "ServiceWorker",
    "cron_jobs",
    "functions",
    "use_uvloop",
    "worker_options",
]
