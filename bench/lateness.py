"""Scheduled-job lateness of an idle worker: how long after its time a job scheduled for later starts, ours
against bare arq (which finds a deferred job at its next poll).

    .venv/bin/python -m bench.lateness [N]

Queues N probe jobs at once, each scheduled for a random time over the next few seconds, to one idle worker; each
probe records when its code began, and the lateness is that minus its scheduled time. No client polls meanwhile.
"""

import asyncio
import random
import sys
import time

from arq.connections import ArqRedis

from bench.common import pct, probe_bench, worker
from bench.probes import pickup_key
from service.core.enqueue import enqueue

SPREAD_S = 4.0


async def measure(redis: ArqRedis, ours: bool, n: int) -> list[float]:
    """Lateness in ms, per job."""
    start = time.time() + 0.5
    # Whole milliseconds, as the queue's scores are: a job is due at its score.
    due = sorted(int((start + random.uniform(0, SPREAD_S)) * 1000) / 1000 for _ in range(n))
    jobs = []
    for at in due:
        if ours:
            job_id = (await enqueue(redis, "pickup_probe", {}, record_ttl_s=60, run_at_ms=int(at * 1000))).job_id
        else:
            job = await redis.enqueue_job("pickup_probe", _defer_by=at - time.time())
            assert job is not None
            job_id = job.job_id
        jobs.append((job_id, at))
    lateness = []
    for job_id, at in jobs:
        reply = await redis.blpop([pickup_key(job_id)], timeout=SPREAD_S + 10)  # type: ignore[misc]
        assert reply is not None, "the probe job did not run"
        lateness.append((float(reply[1]) - at) * 1000)
    return lateness


async def main(n: int) -> dict[str, dict[str, float]]:
    """p50/p95/max lateness per worker: {"OURS": {"p50": ..., "p95": ..., "max": ...}, "ARQ_OUR_SETTINGS": ...}."""
    figures = {}
    async with probe_bench() as (tmp, env, redis):
        for name in ("OURS", "ARQ_OUR_SETTINGS"):
            ours = name == "OURS"
            target = "bench.ours.OURS" if ours else f"bench.probes.{name}"
            with worker(target, env, tmp / f"{name}.log"):
                await measure(redis, ours, 5)  # warm-up
                late = await measure(redis, ours, n)
            f = figures[name] = {"p50": pct(late, 50), "p95": pct(late, 95), "max": max(late)}
            print(
                f"lateness {name:16} n={n:4}  p50 {f['p50']:7.2f} ms, p95 {f['p95']:7.2f} ms, "
                f"max {f['max']:7.2f} ms (never early: min {min(late):.2f} ms)"
            )
    return figures


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
