"""`/metrics` in Prometheus text format, from counters in Redis: every worker and web process adds to them."""

from collections import defaultdict
from collections.abc import Iterable

from arq.connections import ArqRedis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from service.core.counters import DURATION_BUCKETS, WAIT_BUCKETS
from service.core.overview import read_counters
from service.core.queues import read_queues
from service.kinds import Kinds, queues_of

# The outcomes a worker records, under the names Flower and Celery users look for (others keep their own name).
OUTCOME_METRICS = {"success": "completed", "failure": "failed", "retry": "retried"}


class _Snapshot(Collector):
    """A collector over metric families already read from Redis (collect() itself cannot await)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _counter(name: str, doc: str, counts: dict[str, float], kinds: Iterable[str]) -> CounterMetricFamily:
    """One counter by job name; every declared kind has its series from the start (at 0), as Prometheus wants."""
    family = CounterMetricFamily(f"arqjobs_jobs_{name}", doc, labels=["job"])
    for job, value in sorted({**dict.fromkeys(kinds, 0.0), **counts}.items()):
        family.add_metric([job], value)
    return family


def _histogram(
    name: str, doc: str, counts: dict[bytes, bytes], bounds: Iterable[float] = DURATION_BUCKETS
) -> HistogramMetricFamily:
    per_job: dict[str, dict[str, float]] = defaultdict(dict)
    for field, value in counts.items():
        job, _, part = field.decode().rpartition("|")
        per_job[job][part] = float(value)
    family = HistogramMetricFamily(name, doc, labels=["job"])
    for job, parts in sorted(per_job.items()):
        cumulative, buckets = 0.0, []
        for le in [f"{b:g}" for b in bounds] + ["+Inf"]:
            cumulative += parts.get(le, 0.0)
            buckets.append((le, cumulative))
        family.add_metric([job], buckets, parts.get("sum", 0.0))
    return family


def _per_queue(name: str, doc: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["queue"])
    for queue, value in values.items():
        family.add_metric([queue], value)
    return family


async def render_metrics(redis: ArqRedis, kinds: Kinds) -> bytes:
    """The metrics; every declared kind is labelled from the start, and every queue a kind names."""
    counters = await read_counters(redis)
    enqueued, outcomes, durations, waits = counters.enqueued, counters.outcomes, counters.durations, counters.waits
    queues, workers = await read_queues(redis, queues_of(kinds))
    depth = {q.name: float(q.due) for q in queues}
    scheduled = {q.name: float(q.scheduled) for q in queues}
    oldest = {q.name: q.oldest_due_s for q in queues}
    serving = {q.name: float(q.workers) for q in queues}
    names = list(kinds)

    by_outcome: dict[str, dict[str, float]] = {name: {} for name in [*OUTCOME_METRICS.values(), "aborted"]}
    for field, value in outcomes.items():
        job, _, outcome = field.decode().rpartition("|")
        metric = OUTCOME_METRICS.get(outcome, outcome)
        by_outcome.setdefault(metric, {})[job] = float(value)
    families: list[Metric] = [
        _counter("enqueued", "Jobs enqueued", {k.decode(): float(v) for k, v in enqueued.items()}, names),
        _counter("completed", "Jobs that succeeded", by_outcome["completed"], names),
        _counter("failed", "Jobs that failed for good", by_outcome["failed"], names),
        _counter("retried", "Tries that failed and were scheduled again", by_outcome["retried"], names),
        _counter("aborted", "Jobs aborted through the API", by_outcome["aborted"], names),
        _histogram("arqjobs_job_duration_seconds", "Job run time, per try", durations),
        _histogram(
            "arqjobs_queue_wait_seconds", "Time a try waited in its queue, from due to start", waits, WAIT_BUCKETS
        ),
        _per_queue("arqjobs_workers_serving", "Live worker processes that take jobs from the queue", serving),
        _per_queue("arqjobs_queue_depth", "Jobs due to run, waiting for a worker or running", depth),
        _per_queue(
            "arqjobs_jobs_scheduled", "Jobs not due yet (scheduled, or a retry waiting out its back-off)", scheduled
        ),
        _per_queue(
            "arqjobs_oldest_due_job_age_seconds",
            "How long the longest-waiting due job has waited (running jobs left out)",
            oldest,
        ),
        GaugeMetricFamily("arqjobs_jobs_in_progress", "Jobs running now", value=sum(w["running"] for w in workers)),
        GaugeMetricFamily("arqjobs_workers", "Live worker processes", value=len(workers)),
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)
