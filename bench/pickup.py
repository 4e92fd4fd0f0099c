"""Pickup latency of an idle worker: enqueue to job start, ours against arq's defaults.

    .venv/bin/python -m bench.pickup [N]

Enqueues N jobs one at a time to an idle worker (a random pause between them, so arq's poll phase is random) and
prints p50/p95 of the time from the enqueue call to the job's first line.
"""

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from arq.connections import ArqRedis, RedisSettings, create_pool

from bench.common import bench_env, pct, private_server, worker
from service.queue import enqueue
from service.serialization import job_deserializer, job_serializer


async def wait_result(redis: ArqRedis, job_id: str) -> float:
    # A 1 ms poll of the result key, so the client adds no wait of its own.
    while (raw := await redis.get("arq:result:" + job_id)) is None:
        await asyncio.sleep(0.001)
    latency: float = job_deserializer(raw)["r"]
    return latency


async def measure(redis: ArqRedis, ours: bool, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        await asyncio.sleep(random.uniform(0.005, 0.05))
        sent = time.time()
        if ours:
            job_id = (await enqueue(redis, "pickup_probe", {"sent": sent}, record_ttl_s=60)).job_id
        else:
            job = await redis.enqueue_job("pickup_probe", sent=sent)
            assert job is not None
            job_id = job.job_id
        latencies.append(await wait_result(redis, job_id) * 1000)
    return latencies


async def main(n: int) -> dict[str, tuple[float, float]]:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp, private_server(Path(tmp) / "valkey") as server:
        env = bench_env(server.url, Path(tmp) / "data")
        redis = await create_pool(
            RedisSettings.from_dsn(server.url), job_serializer=job_serializer, job_deserializer=job_deserializer
        )
        try:
            for name, count in (("OURS", n), ("ARQ_DEFAULTS", max(20, n // 5)), ("ARQ_OUR_SETTINGS", max(20, n // 5))):
                ours = name == "OURS"
                target = "bench.ours.OURS" if ours else f"bench.probes.{name}"
                with worker(target, env, Path(tmp) / f"{name}.log"):
                    await measure(redis, ours, 5)  # warm-up
                    values = await measure(redis, ours, count)
                figures[name] = (pct(values, 50), pct(values, 95))
                print(f"pickup {name:13} n={count:4}  p50 {figures[name][0]:7.2f} ms   p95 {figures[name][1]:7.2f} ms")
        finally:
            await redis.aclose()
    return figures


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
