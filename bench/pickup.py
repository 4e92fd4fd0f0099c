"""Pickup latency of an idle worker: how long a queued job waits for its worker, ours against arq's.

    .venv/bin/python -m bench.pickup [N]

Enqueues N jobs one at a time to an idle worker (a random pause between them, so arq's poll phase is random), and
prints p50/p95 of the time to the job's first line from two instants: the enqueue acknowledged (the job is in the
queue; this is the pickup latency proper) and the enqueue call (which adds the client's own enqueue round trip).
The job pushes its start time to a list the client waits on with BLPOP: no client polls while it is measured.
"""

import asyncio
import random
import sys
import time

from arq.connections import ArqRedis

from bench.common import pct, probe_bench, worker
from bench.probes import pickup_key
from service.core.enqueue import enqueue


async def measure(redis: ArqRedis, ours: bool, n: int) -> tuple[list[float], list[float]]:
    """(from the acknowledgement, from the call) in ms, per job."""
    from_ack, from_call = [], []
    for _ in range(n):
        await asyncio.sleep(random.uniform(0.005, 0.05))
        called = time.time()
        if ours:
            job_id = (await enqueue(redis, "pickup_probe", {}, record_ttl_s=60)).job_id
        else:
            job = await redis.enqueue_job("pickup_probe")
            assert job is not None
            job_id = job.job_id
        acknowledged = time.time()
        reply = await redis.blpop([pickup_key(job_id)], timeout=10)  # type: ignore[misc]  # async client
        assert reply is not None, "the probe job did not run"
        started = float(reply[1])
        from_ack.append((started - acknowledged) * 1000)
        from_call.append((started - called) * 1000)
    return from_ack, from_call


async def main(n: int) -> dict[str, dict[str, float]]:
    """p50/p95 per worker: {"OURS": {"ack_p50": ..., "ack_p95": ..., "call_p50": ..., "call_p95": ...}, ...}."""
    figures = {}
    async with probe_bench() as (tmp, env, redis):
        for name, count in (("OURS", n), ("ARQ_DEFAULTS", max(20, n // 5)), ("ARQ_OUR_SETTINGS", max(20, n // 5))):
            ours = name == "OURS"
            target = "bench.ours.OURS" if ours else f"bench.probes.{name}"
            with worker(target, env, tmp / f"{name}.log"):
                await measure(redis, ours, 5)  # warm-up
                from_ack, from_call = await measure(redis, ours, count)
            f = figures[name] = {
                "ack_p50": pct(from_ack, 50),
                "ack_p95": pct(from_ack, 95),
                "call_p50": pct(from_call, 50),
                "call_p95": pct(from_call, 95),
            }
            print(
                f"pickup {name:16} n={count:4}  from the enqueue's acknowledgement p50 {f['ack_p50']:7.2f} ms, "
                f"p95 {f['ack_p95']:7.2f} ms;  from the enqueue call p50 {f['call_p50']:7.2f} ms, "
                f"p95 {f['call_p95']:7.2f} ms"
            )
    return figures


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
