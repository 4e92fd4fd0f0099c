"""Delay from a job's end to its SUCCESS event at an SSE client, through uvicorn and the worker's pub/sub push.

.venv/bin/python -m bench.events [N]
"""

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from arq.connections import RedisSettings, create_pool

from bench.common import bench_env, pct, private_server, web, worker
from service.core.enqueue import enqueue
from service.core.serialization import job_deserializer, job_serializer


async def one(client: httpx.AsyncClient, redis, url: str) -> float:  # type: ignore[no-untyped-def]
    # Deferred by 50 ms, so the stream is open before the job runs.
    job_id = (await enqueue(redis, "finish_probe", {}, record_ttl_s=60)).job_id
    await redis.zadd("arq:queue", {job_id: int((time.time() + 0.05) * 1000)})
    async with client.stream("GET", f"{url}/jobs/{job_id}/events") as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and (view := json.loads(line[6:]))["status"] == "SUCCESS":
                return (time.time() - float(view["result"])) * 1000
    raise RuntimeError("the stream ended without SUCCESS")


async def main(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, private_server(Path(tmp) / "valkey") as server:
        env = bench_env(server.url, Path(tmp) / "data")
        redis = await create_pool(
            RedisSettings.from_dsn(server.url), job_serializer=job_serializer, job_deserializer=job_deserializer
        )
        with worker("bench.ours.OURS", env, Path(tmp) / "worker.log"), web(env, Path(tmp) / "web.log") as url:
            async with httpx.AsyncClient(timeout=30) as client:
                delays = [await one(client, redis, url) for _ in range(n)]
        await redis.aclose()
    p50, p95 = pct(delays, 50), pct(delays, 95)
    print(f"job end -> SSE event  n={n}  p50 {p50:.2f} ms   p95 {p95:.2f} ms")
    return p50, p95


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
