"""This service's worker with the probe jobs added: `arq bench.ours.OURS` (arq accepts a dict)."""

from bench.probes import PROBES
from worker_settings import WorkerSettings

OURS = {
    **{k: v for k, v in vars(WorkerSettings).items() if not k.startswith("_")},
    "functions": [*WorkerSettings.functions, *PROBES],
    # Three queues, as a worker serving a team's kinds would: the probes wait in the first.
    "queues": [*WorkerSettings.queues, "bulk"],
}
# Concurrency 100 split over two worker processes, one per core of the benchmark machine.
OURS_SHARE_OF_2 = {**OURS, "max_jobs": OURS["max_jobs"] // 2}
