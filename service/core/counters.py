"""Counters every web and worker process adds to in Redis, so that `/metrics` and the dashboard see all of them.

A process counts in memory and adds its counts to Redis every FLUSH_EVERY_S (a worker with its heartbeat) and
when it stops, in one pipeline: a job costs no Redis command for its metrics, whatever the throughput. What a
process killed with SIGKILL had counted since its last flush is lost, as a Prometheus client's counters are when
its process dies.
"""

import asyncio
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from service.core import keys
from service.core.aio import reraise_cancellation

logger = logging.getLogger(__name__)

# Histogram buckets for job durations, in seconds (Prometheus `le`).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# ... and for the time a job waited in its queue, from due to start (what an autoscaler watches).
WAIT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
TERMINAL_OUTCOMES = frozenset({"success", "failure"})
THROUGHPUT_KEEP_S = 2 * 3600
FLUSH_EVERY_S = 2.0


@dataclass
class MetricsBuffer:
    """Counts not yet added to Redis: enqueues (web), outcomes, duration buckets and sums per job name, jobs
    finished per minute (workers)."""

    enqueued: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    buckets: Counter[str] = field(default_factory=Counter)
    sums: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    finished: Counter[int] = field(default_factory=Counter)
    waits: Counter[str] = field(default_factory=Counter)  # "<name>|<bucket le>"
    wait_sums: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # "<name>|sum"
    failed: Counter[int] = field(default_factory=Counter)  # minute -> jobs that ended FAILURE
    minute_waits: Counter[tuple[int, str]] = field(default_factory=Counter)  # (minute, bucket le) -> tries

    def add_wait(self, name: str, wait_s: float) -> None:
        bucket = next((f"{le:g}" for le in WAIT_BUCKETS if wait_s <= le), "+Inf")
        self.waits[f"{name}|{bucket}"] += 1
        self.wait_sums[f"{name}|sum"] += wait_s
        self.minute_waits[int(time.time()) // 60, bucket] += 1

    def add_enqueued(self, name: str) -> None:
        self.enqueued[name] += 1

    def add(self, name: str, outcome: str, duration_s: float) -> None:
        """A try of `name` ran for `duration_s` and ended with `outcome`, as the job's own wrapper saw it. A
        failure is counted by `add_failure` instead, where the job's FAILURE is written: a timeout, or a job arq
        failed without running it, never reaches the wrapper as one."""
        bucket = next((f"{le:g}" for le in DURATION_BUCKETS if duration_s <= le), "+Inf")
        self.buckets[f"{name}|{bucket}"] += 1
        self.sums[f"{name}|sum"] += duration_s
        if outcome == "failure":
            return
        self.outcomes[f"{name}|{outcome}"] += 1
        if outcome in TERMINAL_OUTCOMES:
            self.finished[int(time.time()) // 60] += 1

    def add_failure(self, name: str) -> None:
        """A job of `name` ended FAILURE, whatever ended it: its own code, a timeout, or arq (an unknown function, a
        definition it cannot read, tries used up by crashes)."""
        minute = int(time.time()) // 60
        self.outcomes[f"{name}|failure"] += 1
        self.finished[minute] += 1
        self.failed[minute] += 1

    def take(self) -> "MetricsBuffer":
        """Hand over the counts and start again from zero."""
        taken = MetricsBuffer(
            self.enqueued,
            self.outcomes,
            self.buckets,
            self.sums,
            self.finished,
            self.waits,
            self.wait_sums,
            self.failed,
            self.minute_waits,
        )
        self.enqueued, self.outcomes, self.buckets, self.waits = Counter(), Counter(), Counter(), Counter()
        self.sums, self.finished, self.wait_sums = defaultdict(float), Counter(), defaultdict(float)
        self.failed, self.minute_waits = Counter(), Counter()
        return taken

    def merge(self, other: "MetricsBuffer") -> None:
        self.enqueued.update(other.enqueued)
        self.outcomes.update(other.outcomes)
        self.buckets.update(other.buckets)
        for name, total in other.sums.items():
            self.sums[name] += total
        self.finished.update(other.finished)
        self.waits.update(other.waits)
        for name, total in other.wait_sums.items():
            self.wait_sums[name] += total
        self.failed.update(other.failed)
        self.minute_waits.update(other.minute_waits)

    async def flush(self, redis: ArqRedis) -> None:
        """Add the counts to Redis; on a Redis error they are kept for the next flush."""
        taken = self.take()
        if not (taken.enqueued or taken.outcomes or taken.waits):
            return
        try:
            async with redis.pipeline(transaction=False) as pipe:
                taken._write_totals(pipe)
                taken._write_minutes(pipe)
                await pipe.execute()
        except (RedisError, OSError) as e:
            self.merge(taken)
            reraise_cancellation(e)
            logger.warning("could not record job metrics (kept for the next try): %r", e)

    def _write_totals(self, pipe: Pipeline) -> None:
        for name, count in self.enqueued.items():
            pipe.hincrby(keys.METRICS_ENQUEUED, name, count)
        for name, count in self.outcomes.items():
            pipe.hincrby(keys.METRICS_OUTCOMES, name, count)
        for name, count in self.buckets.items():
            pipe.hincrby(keys.METRICS_DURATIONS, name, count)
        for name, total in self.sums.items():
            pipe.hincrbyfloat(keys.METRICS_DURATIONS, name, total)
        for name, count in self.waits.items():
            pipe.hincrby(keys.METRICS_WAITS, name, count)
        for name, total in self.wait_sums.items():
            pipe.hincrbyfloat(keys.METRICS_WAITS, name, total)

    def _write_minutes(self, pipe: Pipeline) -> None:
        """The dashboard's per-minute series, kept for THROUGHPUT_KEEP_S."""
        for key_of, counts in ((keys.finished_per_minute, self.finished), (keys.failed_per_minute, self.failed)):
            for minute, count in counts.items():
                pipe.incrby(key_of(minute), count)
                pipe.expire(key_of(minute), THROUGHPUT_KEEP_S)
        for (minute, bucket), count in self.minute_waits.items():
            pipe.hincrby(keys.waits_per_minute(minute), bucket, count)
            pipe.expire(keys.waits_per_minute(minute), THROUGHPUT_KEEP_S)

    async def flush_forever(self, redis: ArqRedis) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self.flush(redis)
