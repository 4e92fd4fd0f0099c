"""Failures that stay (FAILED_TTL, an index of their own), bulk retry, delete, and what a job's detail shows whom."""

from collections.abc import Callable

from arq.connections import ArqRedis
from arq.constants import result_key_prefix
from arq.worker import Worker
from dirty_equals import IsPartialDict, IsStr
from httpx import AsyncClient

from service.core import keys
from service.core.enqueue import enqueue
from service.kinds.reports import report_path
from service.settings import Settings
from tests.integration.helpers import auth


async def test_a_failure_stays_for_failed_ttl_and_is_listed_behind_any_number_of_newer_jobs(
    client: AsyncClient, worker: Callable[..., Worker], arq_pool: ArqRedis, settings: Settings
) -> None:
    admin = auth(settings, "ops", admin=True)
    failed = (await client.post("/send-notification/bounce@example.com")).json()["task_id"]
    done = (await client.post("/tasks", json={"type": 0})).json()["task_id"]
    await worker().main()
    # Its result and record live for FAILED_TTL (a week), a success's for RESULT_TTL (an hour).
    assert await arq_pool.pttl(result_key_prefix + failed) > settings.result_ttl * 1000
    assert await arq_pool.pttl(result_key_prefix + done) <= settings.result_ttl * 1000
    assert await arq_pool.ttl(keys.job_record(failed)) > settings.failed_ttl
    # 1,100 newer jobs: more than the old listing read before it gave up.
    for _ in range(1100):
        await enqueue(arq_pool, "run_sleep_task", {"type": 0}, record_ttl_s=60)
    page = (await client.get("/jobs?status=FAILURE", headers=admin)).json()
    assert [job["id"] for job in page["items"]] == [failed]


async def test_a_user_lists_their_own_failures(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    ann, ben = auth(settings, "ann"), auth(settings, "ben")
    mine = (await client.post("/send-notification/bounce@example.com", headers=ann)).json()["task_id"]
    await client.post("/send-notification/bounce@example.com", headers=ben)
    await worker().main()
    items = (await client.get("/jobs?status=FAILURE", headers=ann)).json()["items"]
    assert [job["id"] for job in items] == [mine]


async def test_retry_all_failed_runs_each_once_and_is_for_admins(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    admin = auth(settings, "ops", admin=True)
    for mailbox in ("bounce", "bounce", "bounce"):
        await client.post(f"/send-notification/{mailbox}@example.com")
    await client.post("/tasks", json={"type": 0})
    await worker().main()
    assert (
        await client.post("/jobs/retry", json={"status": "FAILURE"}, headers=auth(settings, "x"))
    ).status_code == 403
    body = {"status": "FAILURE", "name": "send_notification"}
    assert (await client.post("/jobs/retry", json=body, headers=admin)).json() == {"retried": 3}
    assert (await client.post("/jobs/retry", json=body, headers=admin)).json() == {"retried": 0}  # retried already
    assert (await client.post("/jobs/retry", json={"status": "SUCCESS"}, headers=admin)).status_code == 422
    await worker().main()
    failures = (await client.get("/jobs?status=FAILURE", headers=admin)).json()["items"]
    assert len(failures) == 6  # the three, and their three retries (a bounce is final)


async def test_delete_a_finished_job(client: AsyncClient, worker: Callable[..., Worker], settings: Settings) -> None:
    ann, ben = auth(settings, "ann"), auth(settings, "ben")
    report = (await client.post("/reports", json={"rows": 2}, headers=ann)).json()["task_id"]
    pending = (await client.post("/tasks", json={"type": 0}, headers=ann)).json()["task_id"]
    assert (await client.delete(f"/jobs/{report}", headers=ann)).status_code == 409  # not finished
    await worker(queues=["reports"]).main()
    assert (await client.get(f"/reports/{report}/download", headers=ann)).status_code == 200
    assert report_path(settings, "ann", report).exists()
    assert (await client.delete(f"/jobs/{report}")).status_code == 401
    assert (await client.delete(f"/jobs/{report}", headers=ben)).status_code == 403
    assert (await client.delete(f"/jobs/{report}", headers=ann)).status_code == 204
    assert (await client.get(f"/jobs/{report}", headers=ann)).status_code == 404
    assert (await client.get(f"/reports/{report}/download", headers=ann)).status_code == 404
    assert not report_path(settings, "ann", report).exists()  # the kind's on_delete removed its file
    listed = [job["id"] for job in (await client.get("/jobs", headers=ann)).json()["items"]]
    assert listed == [pending]


async def test_the_detail_shows_args_to_the_owner_and_admins_and_tracebacks_to_admins(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    ann, ben, admin = auth(settings, "ann"), auth(settings, "ben"), auth(settings, "ops", admin=True)
    owned = (await client.post("/send-notification/bounce@example.com", headers=ann)).json()["task_id"]
    anonymous = (await client.post("/send-notification/bounce@example.com?q=secret")).json()["task_id"]
    await worker().main()
    as_admin = (await client.get(f"/jobs/{owned}", headers=admin)).json()
    assert as_admin["args"] == {"email": "bounce@example.com", "message": "some notification", "query": None}
    assert as_admin["error"] == IsPartialDict(type="PermanentFailure", traceback=IsStr(regex=r"(?s).*Traceback.*"))
    as_owner = (await client.get(f"/jobs/{owned}", headers=ann)).json()
    assert as_owner["args"]["email"] == "bounce@example.com" and "traceback" not in as_owner["error"]
    assert (await client.get(f"/jobs/{owned}", headers=ben)).status_code == 403
    # An ownerless job: anyone may read its status, only an admin its arguments and traceback.
    for headers in ({}, ben):
        seen = (await client.get(f"/jobs/{anonymous}", headers=headers)).json()
        assert "args" not in seen and "traceback" not in seen["error"]
        assert "secret" not in str(seen)
    assert (await client.get(f"/jobs/{anonymous}", headers=admin)).json()["args"]["query"] == "secret"
    # Listings and streams never carry either.
    listed = (await client.get("/jobs?status=FAILURE", headers=admin)).json()["items"]
    assert all("args" not in job and "traceback" not in job["error"] for job in listed)
