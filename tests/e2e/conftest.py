"""End-to-end fixtures: the contract's own commands (`arq ...`, `uvicorn ...`) as subprocesses."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service.core import keys
from service.core.connections import sync_redis
from service.dev.server import free_port
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = READY_TIMEOUT_S) -> Any:
    """Poll `predicate` until truthy. The deadline is a hang guard, not a speed check."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.02)
    return value


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Signal our own pid only, wait with a deadline, and kill only if it will not stop."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name} ignored {sig.name} for {STOP_TIMEOUT_S} s; killed") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    # Each test starts from an empty database, as the integration tests' arq_pool fixture gives them.
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    client.close()
    return {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "DATA_DIR": str(settings.data_dir),
        "SLEEP_SCALE": str(settings.sleep_scale),
        "RETRY_BACKOFF_SCALE": str(settings.retry_backoff_scale),
        "SECRET_KEY": settings.secret_key,
        "SHUTDOWN_GRACE_S": "5",
        # This test's workers alone, for `python -m service check`.
        "WORKER_CHECK_DIR": str(tmp_path / "worker-checks"),
    }


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    procs: list[Proc] = []

    def start(name: str, args: list[str], env: dict[str, str]) -> Proc:
        log = tmp_path / f"{name}-{len(procs)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        proc = Proc(name, process, log)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.process.poll() is None:
            proc.stop()


def worker_check(env: dict[str, str]) -> bool:
    check = [sys.executable, "-m", "arq", "--check", "worker_settings.WorkerSettings"]
    return subprocess.run(check, cwd=ROOT, env=env, capture_output=True, check=False).returncode == 0


def worker_beats(env: dict[str, str], pid: int) -> bool:
    """Whether the worker process `pid` has written its heartbeat: it is past its start-up and about to take jobs.
    One Redis read, not an interpreter started per look (as `arq --check` would be)."""
    settings = Settings(
        redis_url=env["REDIS_URL"],
        redis_sentinels=env.get("REDIS_SENTINELS", ""),  # a comma-separated string, as the environment has it
        redis_sentinel_master=env.get("REDIS_SENTINEL_MASTER", "mymaster"),
    )
    client: Any = sync_redis(settings)  # redis-py types sync replies as Awaitable | Any
    try:
        infos = client.mget([keys.worker_info(member.decode()) for member in client.zrange(keys.WORKERS_ZSET, 0, -1)])
    except redis.RedisError:
        return False
    finally:
        client.close()
    return any(json.loads(info)["pid"] == pid for info in infos if info)


@pytest.fixture
def start_worker(spawn: Callable[..., Proc], env: dict[str, str]) -> Callable[[], Proc]:
    def start() -> Proc:
        proc = spawn("worker", ["-m", "arq", "worker_settings.WorkerSettings"], env)
        pid = proc.process.pid
        wait_until(lambda: worker_beats(env, pid) or proc.process.poll() is not None, "the worker's first heartbeat")
        assert proc.process.poll() is None, proc.output()
        return proc

    return start


@pytest.fixture
def start_web(spawn: Callable[..., Proc], env: dict[str, str]) -> Callable[[], str]:
    def start() -> str:
        port = free_port()
        args = [
            "-m",
            "uvicorn",
            "service.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "3",
        ]
        proc = spawn("web", args, env)
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert proc.process.poll() is None, proc.output()
            try:
                return httpx.get(url + "/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, "uvicorn to answer")
        return url

    return start
