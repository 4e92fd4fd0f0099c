"""Job control: failures and retries with backoff, abort, retry, listing, and the per-user quota."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from asgi_lifespan import LifespanManager
from dirty_equals import IsPartialDict
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel

from service.auth import create_token
from service.core import signin
from service.core.failures import PermanentFailure, TransientFailure
from service.engine.runtime import arq_function
from service.kinds import JobContext, Kind
from service.settings import Settings
from service.web.app import create_app
from tests.conftest import make_settings, run_until
from tests.integration.helpers import auth


async def status_of(client: AsyncClient, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.get(f"/jobs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_bounce_fails_for_good_with_a_safe_error(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    job_id = (await client.post("/send-notification/bounce@example.com")).json()["task_id"]
    await worker().main()
    view = await status_of(client, job_id)
    assert view == IsPartialDict(status="FAILURE", attempt=1, result=None)
    assert view["error"] == {
        "type": "PermanentFailure",
        "message": "550 mailbox unavailable: the address does not exist",
    }
    assert not settings.notifications_log.exists()


async def test_transient_failures_read_retry_then_succeed(
    client: AsyncClient, worker: Callable[..., Worker], arq_pool: ArqRedis, settings: Settings
) -> None:
    job_id = (await client.post("/send-notification/flaky@example.com")).json()["task_id"]
    for attempt in (1, 2):
        before_ms = time.time() * 1000
        await worker(max_burst_jobs=1).main()  # exactly one try
        view = await status_of(client, job_id)
        assert view == IsPartialDict(status="RETRY", attempt=attempt)
        assert view["error"] == {"type": "TransientFailure", "message": "451 mailbox busy, try again later"}
        task = (await client.get(f"/tasks/{job_id}")).json()
        assert task == IsPartialDict(task_status="RETRY", task_result="451 mailbox busy, try again later")
        # Backed off: the next try is scheduled later than this one started, and the view says when.
        next_ms = await arq_pool.zscore("arq:queue", job_id)
        assert next_ms > before_ms
        assert datetime.fromisoformat(view["next_try_at"]).timestamp() * 1000 == int(next_ms)
    await worker().main()
    done = await status_of(client, job_id)
    assert done == IsPartialDict(status="SUCCESS", attempt=3, error=None)
    assert "next_try_at" not in done
    assert len(settings.notifications_log.read_text().splitlines()) == 1


async def test_the_last_try_turns_a_transient_failure_permanent(arq_pool: ArqRedis, settings: Settings) -> None:
    class NoArgs(BaseModel):
        pass

    async def always_busy(job: JobContext, args: NoArgs) -> None:
        raise TransientFailure("busy")

    kind = Kind("always_busy", always_busy, NoArgs, "always busy", "Busy", max_tries=3)
    run = arq_function(kind).coroutine
    ctx = {"redis": arq_pool, "job_id": "x"}
    with pytest.raises(PermanentFailure, match="gave up after 3 tries: busy"):
        await run({**ctx, "job_try": 3})


async def test_abort_a_queued_job(client: AsyncClient, worker: Callable[..., Worker]) -> None:
    job_id = (await client.post("/tasks", json={"type": 3})).json()["task_id"]
    response = await client.post(f"/jobs/{job_id}/abort")
    assert response.status_code == 202
    assert response.json() == {"id": job_id, "status": "REVOKED"}
    await worker().main()
    view = await status_of(client, job_id)
    assert view == IsPartialDict(status="REVOKED", started_at=None, attempt=0)  # it never ran
    assert view["error"]["type"] == "CancelledError"
    assert (await client.post(f"/jobs/{job_id}/abort")).status_code == 409
    assert (await client.get(f"/tasks/{job_id}")).json()["task_status"] == "REVOKED"


async def test_abort_a_running_job(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings, report: Callable[[str], None]
) -> None:
    w = worker(burst=False, poll_delay=3600)
    running = asyncio.create_task(w.main())
    job_id = (await client.post("/tasks", json={"type": 3})).json()["task_id"]  # 0.3 s at the test scale
    await run_until(lambda: _has_status(client, job_id, "STARTED"), "the job to start")
    started = time.perf_counter()
    response = await client.post(f"/jobs/{job_id}/abort")
    assert response.status_code == 202 and response.json()["id"] == job_id
    # The abort wakes the worker (poll_delay is an hour), which cancels the job.
    await run_until(lambda: _has_status(client, job_id, "REVOKED"), "the running job to be revoked")
    report(f"running job revoked {time.perf_counter() - started:.3f} s after the abort request")
    running.cancel()


async def test_an_abort_outlives_the_worker_that_ran_the_job(
    client: AsyncClient, worker: Callable[..., Worker], arq_pool: ArqRedis
) -> None:
    """A job claimed by a worker that then dies: the abort flag in its record stops the next worker's try."""
    job_id = (await client.post("/tasks", json={"type": 3})).json()["task_id"]
    await arq_pool.psetex(in_progress_key_prefix + job_id, 10_000, b"1")  # a worker's claim
    response = await client.post(f"/jobs/{job_id}/abort")
    assert response.status_code == 202 and response.json()["status"] == "STARTED"
    await arq_pool.delete(in_progress_key_prefix + job_id)  # its worker died and the claim expired
    await worker().main()
    view = await status_of(client, job_id)
    assert view == IsPartialDict(status="REVOKED", attempt=1)
    assert view["error"] == {"type": "JobAborted", "message": "the job was aborted before it started"}
    assert (await client.get(f"/tasks/{job_id}")).json()["task_status"] == "REVOKED"


async def _has_status(client: AsyncClient, job_id: str, wanted: str) -> bool:
    return (await status_of(client, job_id))["status"] == wanted


async def test_retry_from_failure_and_from_revoked(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    alice = auth(settings, "alice")
    failed = (await client.post("/send-notification/bounce@example.com", json={"message": "hi"}, headers=alice)).json()[
        "task_id"
    ]
    revoked = (await client.post("/tasks", json={"type": 1}, headers=alice)).json()["task_id"]
    await client.post(f"/jobs/{revoked}/abort", headers=alice)
    await worker().main()

    assert (await client.post(f"/jobs/{failed}/retry", headers=auth(settings, "bob"))).status_code == 403
    again = await client.post(f"/jobs/{failed}/retry", headers=alice)
    assert again.status_code == 201
    new_id = again.json()["task_id"]
    assert new_id != failed
    assert await status_of(client, new_id, alice) == IsPartialDict(
        status="PENDING", owner="alice", name="send_notification"
    )
    rerun = (await client.post(f"/jobs/{revoked}/retry", headers=alice)).json()["task_id"]
    await worker().main()
    assert (await status_of(client, new_id, alice))["error"]["type"] == "PermanentFailure"  # same arguments
    assert await status_of(client, rerun, alice) == IsPartialDict(status="SUCCESS", result=True)
    assert (await client.post(f"/jobs/{rerun}/retry", headers=alice)).status_code == 409  # SUCCESS: nothing to retry


async def test_others_cannot_abort(client: AsyncClient, settings: Settings) -> None:
    job_id = (await client.post("/tasks", json={"type": 1}, headers=auth(settings, "alice"))).json()["task_id"]
    assert (await client.post(f"/jobs/{job_id}/abort", headers=auth(settings, "bob"))).status_code == 403
    assert (await client.post(f"/jobs/{job_id}/abort")).status_code == 403
    assert (await client.post(f"/jobs/{job_id}/abort", headers=auth(settings, "ops", admin=True))).status_code == 202
    assert (await client.post("/jobs/nope/abort")).status_code == 404


async def test_listing_is_scoped_paginated_and_filtered(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    alice, bob, admin = auth(settings, "alice"), auth(settings, "bob"), auth(settings, "ops", admin=True)
    mine = [(await client.post("/tasks", json={"type": 0}, headers=alice)).json()["task_id"] for _ in range(5)]
    theirs = [(await client.post("/tasks", json={"type": 0}, headers=bob)).json()["task_id"] for _ in range(2)]
    await client.post(f"/jobs/{mine[0]}/abort", headers=alice)

    seen, cursor = [], None
    while True:
        page = (
            await client.get("/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=alice)
        ).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["next"]):
            break
    assert seen == mine[::-1]  # all of alice's, newest first, each once
    bobs = (await client.get("/jobs", headers=bob)).json()
    assert [item["id"] for item in bobs["items"]] == theirs[::-1] and bobs["next"] is None
    everything = (await client.get("/jobs", params={"limit": 100}, headers=admin)).json()
    assert {item["id"] for item in everything["items"]} == set(mine + theirs)

    revoked = (await client.get("/jobs", params={"status": "REVOKED"}, headers=alice)).json()
    assert [item["id"] for item in revoked["items"]] == [mine[0]]
    await worker().main()
    done = (await client.get("/jobs", params={"status": "SUCCESS"}, headers=alice)).json()
    assert {item["id"] for item in done["items"]} == set(mine[1:])

    assert (await client.get("/jobs")).status_code == 401
    for params in ({"cursor": "!!"}, {"limit": 0}, {"limit": 101}, {"status": "DONE"}):
        assert (await client.get("/jobs", params=params, headers=alice)).status_code == 422, params


@pytest.fixture
async def quota_client(tmp_path: Path, arq_pool: ArqRedis, redis_server) -> AsyncIterator[AsyncClient]:
    app = create_app(make_settings(tmp_path, redis_server.url, max_active_jobs_per_user=5))
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as c,
    ):
        yield c


async def test_the_quota_holds_under_concurrent_posts(
    quota_client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    alice = auth(settings, "alice")
    responses = await asyncio.gather(*(quota_client.post("/tasks", json={"type": 0}, headers=alice) for _ in range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 5 + [429] * 15
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["retry-after"].isdigit() and refused.json() == {
        "detail": "at most 5 jobs may be pending or running per user"
    }
    # Other users have their own allowance; anonymous tasks are not limited.
    assert (await quota_client.post("/tasks", json={"type": 0}, headers=auth(settings, "bob"))).status_code == 201
    await worker().main()
    assert (await quota_client.post("/tasks", json={"type": 0}, headers=alice)).status_code == 201  # room again


async def test_a_one_time_sign_in_link_works_once(client: AsyncClient, settings: Settings, arq_pool: ArqRedis) -> None:
    token = create_token("ops", settings.secret_key, admin=True)
    plain = sync_redis.Redis.from_url(settings.redis_url)
    try:
        code = signin.create_code(plain, token)
    finally:
        plain.close()
    first = await client.post("/auth/exchange", json={"code": code})
    assert first.status_code == 200
    assert first.json() == {"token": token, "user": "ops", "admin": True}
    again = await client.post("/auth/exchange", json={"code": code})
    assert again.status_code == 401
    assert (await client.post("/auth/exchange", json={"code": "short"})).status_code == 422
