"""The pytest plugin (`service.testing`) as this repository's own tests use it: the app on a private server,
`run_jobs` running what is due in the test's process, back-off skipped, scheduled jobs left alone."""

from collections.abc import Callable

import pytest
from httpx import AsyncClient

from service.client import Jobs
from service.settings import Settings
from service.testing import RunJobs


@pytest.fixture
def job_settings(job_settings: Settings) -> Settings:
    return job_settings.model_copy(update={"job_kinds": ["tests.integration.slow_kinds"]})


async def test_run_jobs_runs_what_the_api_queued(job_client: AsyncClient, run_jobs: RunJobs) -> None:
    task = (await job_client.post("/tasks", json={"type": 0})).json()["task_id"]
    note = (await job_client.post("/send-notification/ada@example.com", params={"q": "x"})).json()["task_id"]
    assert (await job_client.get(f"/tasks/{task}")).json()["task_status"] == "PENDING"
    assert sorted(await run_jobs()) == sorted([task, note])
    assert (await job_client.get(f"/tasks/{task}")).json() == {
        "task_id": task,
        "task_status": "SUCCESS",
        "task_result": True,
    }
    assert (await job_client.get(f"/jobs/{note}")).json()["status"] == "SUCCESS"
    assert await run_jobs() == []  # nothing left


async def test_run_jobs_skips_back_off_and_leaves_scheduled_jobs(
    jobs: Jobs, job_settings: Settings, run_jobs: RunJobs
) -> None:
    assert job_settings.retry_backoff_scale == 1  # each retry's back-off is the declared hour
    busy = await jobs.enqueue("busy_twice")
    later = await jobs.enqueue("run_sleep_task", {"type": 0}, delay_s=3600)
    assert await run_jobs() == [busy.id] * 3  # finished now: the runner's doing
    assert await busy.result(timeout=5) == 3
    assert (await later.view()).status == "PENDING"


async def test_jobs_and_tokens_share_the_app_s_server(
    jobs: Jobs, job_client: AsyncClient, job_auth: Callable[..., dict[str, str]], run_jobs: RunJobs
) -> None:
    handle = await jobs.enqueue("generate_report", {"rows": 3}, owner="ada")
    assert (await job_client.get(f"/reports/{handle.id}", headers=job_auth("bob"))).status_code == 403
    await run_jobs()
    download = await job_client.get(f"/reports/{handle.id}/download", headers=job_auth("ada"))
    assert download.status_code == 200
    assert len(download.text.strip().splitlines()) == 4  # a header and three rows
    assert (await job_client.get("/jobs", headers=job_auth("root", admin=True))).json()["items"][0]["id"] == handle.id
