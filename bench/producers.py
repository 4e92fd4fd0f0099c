"""What a producer sees: `Jobs.enqueue_many` of 10,000 jobs, `POST /jobs/batch` of 1,000 through HTTP, one-at-a-time
`Jobs.enqueue`, and how soon `handle.result()` returns after the job's end, beside arq's `Job.result()` at its
default poll (0.5 s).

    .venv/bin/python -m bench.producers [--quick]

Medians of 3 runs (1 with --quick) on a private valkey-server; `make bench` runs it and adds the table to
bench/RESULTS.md.
"""

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from arq.connections import RedisSettings, create_pool

from bench.common import bench_env, pct, private_server, web, worker
from service.client import Jobs, job_deserializer, job_serializer
from service.core.enqueue import enqueue
from service.settings import Settings

MANY = 10_000
BATCH = 1_000


async def enqueue_many_rate(jobs: Jobs) -> float:
    batch = [("run_sleep_task", {"type": 0})] * MANY
    started = time.perf_counter()
    await jobs.enqueue_many(batch)
    return MANY / (time.perf_counter() - started)


async def enqueue_one_rate(jobs: Jobs, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await jobs.enqueue("run_sleep_task", {"type": 0})
    return n / (time.perf_counter() - started)


async def http_batch_rate(url: str, batches: int) -> float:
    body = {"jobs": [{"name": "run_sleep_task", "args": {"type": 0}}] * BATCH}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await client.post("/jobs/batch", json=body)  # warm: the script loaded, the connection open
        started = time.perf_counter()
        for _ in range(batches):
            answer = await client.post("/jobs/batch", json=body)
            answer.raise_for_status()
        return batches * BATCH / (time.perf_counter() - started)


async def result_delays(jobs: Jobs, n: int) -> list[float]:
    """From a job's end (the time it returns, its result) to `handle.result()` returning, ms. Each job is due 20 ms
    after its enqueue, so that the handle waits before the job runs, as a producer's would."""
    delays = []
    for _ in range(n):
        queued = await enqueue(
            jobs.redis, "finish_probe", {}, record_ttl_s=60, run_at_ms=int((time.time() + 0.02) * 1000)
        )
        ended = await jobs.job(queued.job_id).result(timeout=30)
        delays.append((time.time() - float(ended)) * 1000)
    return delays


async def arq_result_delays(redis_url: str, n: int) -> list[float]:
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url), job_serializer=job_serializer, job_deserializer=job_deserializer
    )
    delays = []
    try:
        for _ in range(n):
            job = await pool.enqueue_job("finish_probe", _defer_by=0.02)
            assert job is not None
            ended = await job.result(timeout=30)  # arq's own wait: it polls every 0.5 s
            delays.append((time.time() - float(ended)) * 1000)
    finally:
        await pool.aclose()
    return delays


async def main(quick: bool = False) -> dict[str, float]:
    runs = 1 if quick else 3
    figures: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    with tempfile.TemporaryDirectory() as tmp_name, private_server(Path(tmp_name) / "valkey") as server:
        tmp = Path(tmp_name)
        env = bench_env(server.url, tmp / "data")
        settings = Settings(redis_url=server.url, data_dir=tmp / "data", secret_key=env["SECRET_KEY"])
        async with Jobs(settings=settings) as jobs:
            for _ in range(runs):
                await jobs.redis.flushdb()
                add("enqueue_many_jobs_s", await enqueue_many_rate(jobs))
                await jobs.redis.flushdb()
                add("enqueue_one_jobs_s", await enqueue_one_rate(jobs, 2000 if quick else 5000))
            await jobs.redis.flushdb()
            with web(env, tmp / "web.log") as url:
                for _ in range(runs):
                    add("http_batch_jobs_s", await http_batch_rate(url, 5 if quick else 10))
                    await jobs.redis.flushdb()
            with worker("bench.ours.OURS", env, tmp / "worker.log"):
                ours = await result_delays(jobs, 50 if quick else 200)
                arq = await arq_result_delays(server.url, 10 if quick else 30)
    medians = {name: statistics.median(values) for name, values in figures.items()}
    medians |= {
        "result_p50_ms": pct(ours, 50),
        "result_p95_ms": pct(ours, 95),
        "arq_result_p50_ms": pct(arq, 50),
        "arq_result_p95_ms": pct(arq, 95),
    }
    return medians


def table(figures: dict[str, Any]) -> str:
    rows = [
        ("`Jobs.enqueue_many` of 10,000 jobs, one call (jobs/s)", "enqueue_many_jobs_s"),
        ("`Jobs.enqueue`, one job at a time (jobs/s)", "enqueue_one_jobs_s"),
        ("`POST /jobs/batch` of 1,000, one client in turn (jobs/s through HTTP)", "http_batch_jobs_s"),
        ("job's end to `handle.result()` returning, p50 (ms)", "result_p50_ms"),
        ("the same, p95 (ms)", "result_p95_ms"),
        ("job's end to arq's `Job.result()` returning, default poll, p50 (ms)", "arq_result_p50_ms"),
        ("the same, p95 (ms)", "arq_result_p95_ms"),
    ]
    lines = ["| producer figure | value |", "| --- | ---: |"]
    lines += [f"| {label} | {figures[key]:,.2f} |" for label, key in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(asyncio.run(main("--quick" in sys.argv))))
