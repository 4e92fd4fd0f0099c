"""What the benchmarks share: a private server, worker and web subprocesses, percentiles."""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
from arq.connections import ArqRedis, RedisSettings, create_pool

from service.core.serialization import job_deserializer, job_serializer
from service.dev.server import ValkeyServer, free_port

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-" + "x" * 40


def pid_of(command_line: str) -> int:
    """The pid of the (first) process whose command line contains `command_line`."""
    found = subprocess.run(["pgrep", "-f", command_line], capture_output=True, text=True, check=True).stdout
    return int(found.split()[0])


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
def worker(settings: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`arq <settings>` (`bench.ours.OURS`, `bench.probes.ARQ_DEFAULTS`, ...), ready once `arq --check` passes."""
    with process(["-m", "arq", settings], env, log) as proc:
        check = [sys.executable, "-m", "arq", "--check", settings]
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


@asynccontextmanager
async def probe_bench() -> AsyncIterator[tuple[Path, dict[str, str], ArqRedis]]:
    """A private server and a pool on it, for the benchmarks that time probe jobs one worker at a time: yields the
    temp dir, the workers' environment and the pool."""
    with tempfile.TemporaryDirectory() as tmp_name, private_server(Path(tmp_name) / "valkey") as server:
        tmp = Path(tmp_name)
        redis = await create_pool(
            RedisSettings.from_dsn(server.url), job_serializer=job_serializer, job_deserializer=job_deserializer
        )
        try:
            yield tmp, bench_env(server.url, tmp / "data"), redis
        finally:
            await redis.aclose()
