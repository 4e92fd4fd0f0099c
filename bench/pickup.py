"""Pickup latency of an idle worker: enqueue to job start, ours against arq's defaults.

    .venv/bin/python -m bench.pickup [N]

Starts a private valkey-server on a free port and, in turn, `arq bench.pickup.OURS` and `arq bench.pickup.ARQ_DEFAULTS`
as subprocesses; enqueues N jobs one at a time to an idle worker (a random pause between them, so arq's poll phase is
random) and prints p50/p95 of the time from the enqueue call to the job's first line.
"""

import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import func

from service.devserver import ValkeyServer, free_port
from service.jobs import FUNCTIONS
from service.queue import enqueue
from service.serialization import job_deserializer, job_serializer
from service.settings import Settings
from worker_settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]


async def pickup_probe(_: dict[str, Any], sent: float) -> float:
    return time.time() - sent


_ours = {k: v for k, v in vars(WorkerSettings).items() if not k.startswith("_")}
OURS = {**_ours, "functions": [*FUNCTIONS, func(pickup_probe, name="pickup_probe")]}
ARQ_DEFAULTS = {
    "functions": [func(pickup_probe, name="pickup_probe")],
    "redis_settings": RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0")),
    "job_serializer": job_serializer,
    "job_deserializer": job_deserializer,
}


async def wait_result(redis: ArqRedis, job_id: str) -> float:
    while (raw := await redis.get("arq:result:" + job_id)) is None:  # noqa: ASYNC110  # a 1 ms poll, so the client adds no wait of its own
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


def run_worker(settings_name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "arq", f"bench.pickup.{settings_name}"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    check = [sys.executable, "-m", "arq", "--check", f"bench.pickup.{settings_name}"]
    while subprocess.run(check, cwd=ROOT, env=env, capture_output=True, check=False).returncode != 0:
        time.sleep(0.1)
    return proc


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = ValkeyServer(free_port(), Path(tmp))
        server.start()
        env = {**os.environ, "REDIS_URL": server.url, "SECRET_KEY": "bench-" + "x" * 40}
        redis = await create_pool(
            RedisSettings.from_dsn(server.url), job_serializer=job_serializer, job_deserializer=job_deserializer
        )
        Settings(redis_url=server.url, secret_key=env["SECRET_KEY"])
        try:
            for name, ours, count in (("OURS", True, n), ("ARQ_DEFAULTS", False, max(20, n // 5))):
                proc = run_worker(name, env, Path(tmp) / f"{name}.log")
                await measure(redis, ours, 5)  # warm-up
                values = await measure(redis, ours, count)
                proc.terminate()
                proc.wait(10)
                print(f"{name:13} n={count:4}  p50 {pct(values, 50):7.2f} ms   p95 {pct(values, 95):7.2f} ms")
        finally:
            await redis.aclose()
            server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
