"""The FastAPI docs' example moved to DurableTasks, with real processes: its own uvicorn app and `arq` workers; a
worker killed in the middle of a task loses nothing, and the task's effect happens once."""

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from service.dev.server import free_port
from tests.e2e.conftest import ROOT, Proc, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def run_here(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[[str, list[str]], Proc]]:
    """Processes started in a folder of their own (the docs' task writes its log file where it runs)."""
    procs: list[Proc] = []
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    env.update({"PYTHONPATH": str(ROOT), "JOB_KINDS": "tests.docs_app:write_notification,tests.docs_app:append_slowly"})

    def start(name: str, args: list[str]) -> Proc:
        log = tmp_path / f"{name}-{len(procs)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, *args], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        procs.append(Proc(name, process, log))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.process.poll() is None:
            proc.stop()


def test_a_worker_killed_mid_task_loses_nothing_and_the_task_runs_once(
    run_here: Callable[[str, list[str]], Proc], env: dict[str, str], tmp_path: Path, report: Callable[[str], None]
) -> None:
    env["SLOW_TASK_S"] = "3"
    port = free_port()
    run_here("web", ["-m", "uvicorn", "tests.docs_app:app", "--host", "127.0.0.1", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.post(f"{url}/send-notification/ada@example.com").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, "the docs' app to answer")
    first = run_here("worker", ["-m", "arq", "worker_settings.WorkerSettings"])
    client: Any = redis.Redis.from_url(env["REDIS_URL"])  # redis-py types sync replies as Awaitable | Any
    try:
        job_id = httpx.post(f"{url}/slow/ada@example.com").json()["task_id"]
        # arq has counted the try (its start transaction, after the claim): the task is in its sleep.
        wait_until(lambda: client.exists(f"arq:retry:{job_id}"), "the slow task to start")
        first.stop(signal.SIGKILL)  # mid-task: in its 3 s sleep, before its write
        run_here("worker", ["-m", "arq", "worker_settings.WorkerSettings"])

        def result() -> dict[str, object] | None:
            raw = client.get(f"arq:result:{job_id}")
            return orjson.loads(raw) if raw else None

        done = wait_until(result, "the task to run again on the other worker", timeout=40)
        assert isinstance(done, dict) and done["s"] is True and done["t"] == 2  # its second try, and a success
        workdir = tmp_path / "workdir"
        assert (workdir / "slow-log.txt").read_text().splitlines() == ["notification for ada@example.com: slow"]
        assert (workdir / "log.txt").read_text() == "notification for ada@example.com: some notification"
        report("DurableTasks: the slow task ran again on the second worker after a kill -9, its line written once")
    finally:
        client.close()
