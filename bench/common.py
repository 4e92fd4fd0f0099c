"""What the benchmarks share: a private server, worker and web subprocesses, probe jobs, percentiles."""

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from arq.connections import RedisSettings
from arq.worker import func

from service.devserver import ValkeyServer, free_port
from service.jobs import FUNCTIONS
from service.serialization import job_deserializer, job_serializer
from worker_settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-" + "x" * 40


async def pickup_probe(_: dict[str, Any], sent: float) -> float:
    """Seconds from `sent` (the enqueue call) to this job's first line."""
    return time.time() - sent


async def finish_probe(_: dict[str, Any]) -> float:
    """The wall-clock time at which this job ends."""
    return time.time()


async def sleep_probe(_: dict[str, Any], seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return True


PROBES = [
    func(pickup_probe, name="pickup_probe"),
    func(finish_probe, name="finish_probe"),
    func(sleep_probe, name="sleep_probe"),
]
_ours = {k: v for k, v in vars(WorkerSettings).items() if not k.startswith("_")}
# Worker settings for `arq bench.common.OURS` / `arq bench.common.ARQ_DEFAULTS` (arq accepts a dict).
OURS = {**_ours, "functions": [*FUNCTIONS, *PROBES]}
ARQ_DEFAULTS = {
    "functions": PROBES,
    "redis_settings": RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0")),
    "job_serializer": job_serializer,
    "job_deserializer": job_deserializer,
}


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@contextmanager
def private_server(directory: Path) -> Iterator[ValkeyServer]:
    server = ValkeyServer(free_port(), directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def bench_env(redis_url: str, data_dir: Path, sleep_scale: float = 0) -> dict[str, str]:
    """The environment of the processes under test: a private server, a short shutdown grace."""
    return {**os.environ, "REDIS_URL": redis_url, "SECRET_KEY": SECRET, "DATA_DIR": str(data_dir),
            "SLEEP_SCALE": str(sleep_scale), "SHUTDOWN_GRACE_S": "2"}  # fmt: skip


@contextmanager
def process(
    args: list[str], env: dict[str, str], log: Path, *, python: str = sys.executable, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([python, *args], cwd=cwd, env=env, stdout=out, stderr=out)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(15)


@contextmanager
def worker(settings_name: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`arq bench.common.<settings_name>`, ready once `arq --check` passes."""
    with process(["-m", "arq", f"bench.common.{settings_name}"], env, log) as proc:
        check = [sys.executable, "-m", "arq", "--check", f"bench.common.{settings_name}"]
        while subprocess.run(check, cwd=ROOT, env=env, capture_output=True, check=False).returncode != 0:
            time.sleep(0.1)
        yield proc


@contextmanager
def web(
    env: dict[str, str], log: Path, *, app: str = "service.main:app", python: str = sys.executable, cwd: Path = ROOT
) -> Iterator[str]:
    port = free_port()
    args = ["-m", "uvicorn", app, "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with process(args, env, log, python=python, cwd=cwd):
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(url + "/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
