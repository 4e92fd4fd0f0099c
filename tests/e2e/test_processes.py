"""The contract's commands as real processes: uvicorn, `arq worker_settings.WorkerSettings`, `arq --check`."""

import json
from collections.abc import Callable

import httpx
import pytest
from dirty_equals import IsPartialDict

from tests.e2e.conftest import Proc, wait_until, worker_check

pytestmark = pytest.mark.e2e


def wait_for_status(url: str, task_id: str, wanted: str) -> dict[str, object]:
    def done() -> dict[str, object] | None:
        body = httpx.get(f"{url}/tasks/{task_id}").json()
        return body if body["task_status"] == wanted else None

    return wait_until(done, f"task {task_id} to reach {wanted}")


def test_a_task_runs_end_to_end(start_web: Callable[[], str], start_worker: Callable[[], Proc]) -> None:
    url = start_web()
    worker = start_worker()
    task_id = httpx.post(f"{url}/tasks", json={"type": 1}).json()["task_id"]
    assert wait_for_status(url, task_id, "SUCCESS") == {
        "task_id": task_id,
        "task_status": "SUCCESS",
        "task_result": True,
    }
    assert worker.stop() == 0
    # One JSON line at the job's end, with id, name, try, duration and outcome; arq's own lines are plain text.
    records = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    ended = [r for r in records if r.get("job_id") == task_id]
    assert ended == [IsPartialDict(message="job ended", job_name="run_sleep_task", job_try=1, outcome="success")]
    assert ended[0]["duration_s"] >= 0 and ended[0]["level"] == "INFO"


def test_health_counts_each_worker(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str]
) -> None:
    url = start_web()
    first, second = start_worker(), start_worker()
    wait_until(lambda: httpx.get(f"{url}/health").json()["workers"] == 2, "two live workers")
    assert first.stop() == 0
    # The stopped worker leaves at once; the other still counts, and still passes arq's own check.
    assert httpx.get(f"{url}/health").json() == {
        "status": "ok",
        "redis": "ok",
        "workers": 1,
        "queued": 0,
        "queues": {"default": 0, "reports": 0},
    }
    wait_until(lambda: worker_check(env), "arq --check to pass for the remaining worker")
    assert second.stop() == 0
    assert httpx.get(f"{url}/health").json()["workers"] == 0
