"""Redis commands per job (from INFO commandstats, Lua's inner calls included): ours against bare arq.

    .venv/bin/python -m bench.commands [N]

Ours: N `POST /tasks {"type": 0}` through uvicorn, run by `arq bench.ours.OURS`. Bare arq: N `enqueue_job` calls,
run by a worker with arq's defaults. The counter is reset before and read after; the bench's own INFO, CONFIG and
ZCARD calls are subtracted. Idle workers poll and beat meanwhile, so the window is kept short.
"""

import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from arq.connections import ArqRedis, RedisSettings, create_pool

from bench.common import bench_env, private_server, web, worker
from service.core.serialization import job_deserializer, job_serializer


async def counts(redis: ArqRedis) -> Counter[str]:
    stats = await redis.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()})


async def drain(redis: ArqRedis) -> int:
    polls = 0
    while await redis.zcard("arq:queue"):
        polls += 1
        await asyncio.sleep(0.02)
    return polls + 1


async def measure(redis: ArqRedis, n: int, url: str | None) -> Counter[str]:
    await redis.config_resetstat()
    started = time.perf_counter()
    if url:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(n):
                await client.post("/tasks", json={"type": 0})
    else:
        for _ in range(n):
            await redis.enqueue_job("finish_probe")
    polls = await drain(redis)
    await asyncio.sleep(0.3)  # let the last results land
    used = await counts(redis)
    used.subtract({"info": 1, "config|resetstat": 1, "zcard": polls})
    print(f"  ({time.perf_counter() - started:.1f} s window)", file=sys.stderr)
    return +used


async def main(n: int) -> dict[str, float]:
    per_job = {}
    with tempfile.TemporaryDirectory() as tmp, private_server(Path(tmp) / "valkey") as server:
        env = bench_env(server.url, Path(tmp) / "data")
        redis = await create_pool(
            RedisSettings.from_dsn(server.url), job_serializer=job_serializer, job_deserializer=job_deserializer
        )
        with worker("bench.probes.ARQ_DEFAULTS", env, Path(tmp) / "arq.log"):
            bare = await measure(redis, n, None)
        with worker("bench.ours.OURS", env, Path(tmp) / "ours.log"), web(env, Path(tmp) / "web.log") as url:
            ours = await measure(redis, n, url)
        await redis.aclose()
    for name, used in (("bare arq", bare), ("ours", ours)):
        per_job[name] = sum(used.values()) / n
        top = ", ".join(f"{cmd} {calls / n:.1f}" for cmd, calls in used.most_common(30))
        print(f"{name:9} {per_job[name]:5.1f} commands/job   [{top}]")
    return per_job


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
