"""The worker engine: arq's `Worker` subclassed (`worker.ServiceWorker`), and the arq functions and cron jobs made
from the declared job kinds (`runtime`). The web app never imports this package."""

from arq.cron import CronJob

from service.engine import housekeeping
from service.engine.runtime import functions, scheduled
from service.engine.worker import ServiceWorker, use_uvloop
from service.kinds import Kinds

# Jobs one worker process runs at once (arq's `max_jobs`).
MAX_JOBS = 100
# The longest wait between two looks at the queue: enqueues wake idle workers through pub/sub at once.
POLL_DELAY_S = 0.25


def cron_jobs(kinds: Kinds) -> list[CronJob]:
    """The scheduled kinds' cron jobs, and the engine's own housekeeping."""
    return [*scheduled(kinds), *housekeeping.CRON_JOBS]


__all__ = ["MAX_JOBS", "POLL_DELAY_S", "ServiceWorker", "cron_jobs", "functions", "use_uvloop"]
