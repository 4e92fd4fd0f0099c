"""`make run` as a newcomer runs it: private Valkey, worker and web; Ctrl-C stops all; a second run finds the jobs."""

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from service.dev.server import free_port, port_in_use
from tests.e2e.conftest import ROOT, STOP_TIMEOUT_S, wait_until

pytestmark = pytest.mark.e2e


def make_run(
    tmp_path: Path, data_dir: Path, web_port: int, valkey_port: int, n: int
) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {"DATA_DIR": str(data_dir), "PORT": str(web_port), "VALKEY_PORT": str(valkey_port), "SLEEP_SCALE": "0.01"}
    log = tmp_path / f"make-run-{n}.log"
    with log.open("wb") as out:
        # A session of its own, so that SIGINT to its process group is what Ctrl-C in a terminal sends.
        proc = subprocess.Popen(
            ["make", "-s", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    wait_until(lambda: "Ready: open" in log.read_text() or proc.poll() is not None, "make run to say it is ready", 60)
    assert proc.poll() is None, log.read_text()
    return proc, log


def ctrl_c(proc: subprocess.Popen[bytes], log: Path, *ports: int) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    # make reports death by SIGINT as it does at a terminal; the runner below it must still stop cleanly.
    assert proc.wait(STOP_TIMEOUT_S * 2) in (0, -signal.SIGINT), log.read_text()
    wait_until(lambda: not any(port_in_use(p) for p in ports), "web, worker and Valkey to stop")
    assert "Traceback" not in log.read_text(), log.read_text()


def test_make_run_serves_and_keeps_jobs_across_restarts(tmp_path: Path) -> None:
    data_dir, web_port, valkey_port = tmp_path / "data", free_port(), free_port()
    proc, log = make_run(tmp_path, data_dir, web_port, valkey_port, 1)
    url = f"http://127.0.0.1:{web_port}"
    assert re.search(rf"Ready: open http://127\.0\.0\.1:{web_port}/", log.read_text())
    task_id = httpx.post(f"{url}/tasks", json={"type": 1}).json()["task_id"]
    wait_until(lambda: httpx.get(f"{url}/tasks/{task_id}").json()["task_status"] == "SUCCESS", "the task to succeed")
    assert httpx.get(f"{url}/health").json()["workers"] == 1
    # The dashboard opens signed in as the demo admin, through a link that works once.
    link = re.search(rf"http://127\.0\.0\.1:{web_port}/dashboard#signin=([A-Za-z0-9_-]+)", log.read_text())
    assert link is not None, log.read_text()
    signed_in = httpx.post(f"{url}/auth/exchange", json={"code": link.group(1)})
    assert signed_in.status_code == 200 and signed_in.json()["admin"] is True
    assert httpx.post(f"{url}/auth/exchange", json={"code": link.group(1)}).status_code == 401

    ctrl_c(proc, log, web_port, valkey_port)
    assert "shutdown on SIGTERM" in log.read_text()  # the worker was stopped, not killed
    assert (data_dir / "valkey" / "appendonlydir").is_dir()

    proc, log = make_run(tmp_path, data_dir, web_port, valkey_port, 2)
    try:
        assert httpx.get(f"{url}/tasks/{task_id}").json() == {
            "task_id": task_id,
            "task_status": "SUCCESS",
            "task_result": True,
        }
    finally:
        ctrl_c(proc, log, web_port, valkey_port)
