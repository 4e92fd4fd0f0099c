"""Lists that scale: server-side filters, cursor paging, search by id prefix, each try in a job's detail; and a
week-old failure found behind 100,000 newer jobs."""

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.worker import Worker
from httpx import AsyncClient
from redis.asyncio.client import Pipeline

from service.core import keys
from service.core.enqueue import ENQUEUE, Prepared, prepare
from service.core.scripts import run_pipeline
from service.settings import Settings
from tests.integration.helpers import auth


async def page_through(client: AsyncClient, headers: dict[str, str], **params: object) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        query: dict[str, Any] = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/jobs", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["items"]
        if not (cursor := body["next"]):
            return seen


async def test_filters_by_kind_queue_owner_and_time_page_through_250_jobs(
    client: AsyncClient, settings: Settings
) -> None:
    admin, bob = auth(settings, "root", admin=True), auth(settings, "bob")
    tasks = [(await client.post("/tasks", json={"type": 0})).json()["task_id"] for _ in range(250)]
    middle = datetime.now(UTC)
    reports = [(await client.post("/reports", json={"rows": 1}, headers=bob)).json()["task_id"] for _ in range(3)]
    notes = [(await client.post("/send-notification/a@example.com")).json()["task_id"] for _ in range(2)]

    by_kind = await page_through(client, admin, name="run_sleep_task")
    assert [job["id"] for job in by_kind] == tasks[::-1]  # every one, newest first, none twice
    assert [job["id"] for job in await page_through(client, admin, queue="reports")] == reports[::-1]
    assert [job["id"] for job in await page_through(client, admin, owner="bob")] == reports[::-1]
    assert [job["id"] for job in await page_through(client, admin, name="send_notification")] == notes[::-1]
    later = await page_through(client, admin, since=middle.isoformat())
    assert {job["id"] for job in later} == {*reports, *notes}
    earlier = await page_through(client, admin, until=middle.isoformat(), name="run_sleep_task")
    assert len(earlier) == 250
    # Two filters: the kind's index, the queue checked job by job.
    assert await page_through(client, admin, name="run_sleep_task", queue="reports") == []

    # A user lists only their own, and may not ask for another's.
    assert [job["id"] for job in await page_through(client, bob)] == reports[::-1]
    assert (await client.get("/jobs", params={"owner": "alice"}, headers=bob)).status_code == 403
    assert (await client.get("/jobs", params={"since": "yesterday"}, headers=admin)).status_code == 422


async def test_search_by_an_id_or_its_first_characters(client: AsyncClient, settings: Settings) -> None:
    admin, alice, bob = auth(settings, "root", admin=True), auth(settings, "alice"), auth(settings, "bob")
    mine = (await client.post("/reports", json={"rows": 1}, headers=alice)).json()["task_id"]
    for _ in range(20):
        await client.post("/tasks", json={"type": 0})
    found = (await client.get("/jobs/search", params={"q": mine[:8]}, headers=admin)).json()["items"]
    assert [job["id"] for job in found] == [mine]
    assert [j["id"] for j in (await client.get("/jobs/search", params={"q": mine}, headers=alice)).json()["items"]] == [
        mine
    ]
    # Another user's job is not found by another user.
    assert (await client.get("/jobs/search", params={"q": mine[:8]}, headers=bob)).json()["items"] == []
    assert (await client.get("/jobs/search", params={"q": "ab"}, headers=admin)).status_code == 422
    assert (await client.get("/jobs/search", params={"q": mine[:8]})).status_code == 401


async def test_the_detail_lists_each_try_with_its_error(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    job_id = (await client.post("/send-notification/flaky@example.com")).json()["task_id"]
    for _ in range(3):
        await worker(max_burst_jobs=1).main()
    view = (await client.get(f"/jobs/{job_id}")).json()
    assert view["status"] == "SUCCESS"
    assert [t["attempt"] for t in view["tries"]] == [1, 2, 3]
    assert [t["error"] for t in view["tries"]] == ["TransientFailure: 451 mailbox busy, try again later"] * 2 + [None]
    assert all(t["worker"] for t in view["tries"])
    assert view["tries"][0]["started_at"] <= view["tries"][1]["started_at"] <= view["started_at"]
    # The try that ended a job FAILURE shows that error too (the record keeps only retried tries' errors).
    bounced = (await client.post("/send-notification/bounce@example.com")).json()["task_id"]
    await worker().main()
    failed = (await client.get(f"/jobs/{bounced}")).json()
    assert failed["status"] == "FAILURE"
    assert [t["error"] for t in failed["tries"]] == [
        "PermanentFailure: 550 mailbox unavailable: the address does not exist"
    ]
    # Lists stay lean: no tries there.
    listed = (await client.get("/jobs", headers=auth(settings, "root", admin=True))).json()["items"]
    assert "tries" not in listed[0]


async def _seed(redis: ArqRedis, n: int, name: str, queue: str, owner: str | None) -> None:
    """n real enqueues (the enqueue script itself), pipelined 2,000 at a time."""
    for start in range(0, n, 2000):
        jobs = [
            prepare(name, {"type": 0}, record_ttl_s=3600, owner=owner, queue=queue) for _ in range(min(2000, n - start))
        ]

        def build(pipe: Pipeline, jobs: list[Prepared] = jobs) -> None:
            for job in jobs:
                ENQUEUE.queue(pipe, job.keys, job.args)

        await run_pipeline(redis, build, [ENQUEUE])


async def _median_ms(client: AsyncClient, n: int, **kwargs: object) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get("/jobs", **kwargs)  # type: ignore[arg-type]
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return statistics.median(times)


@pytest.mark.slow  # 100,000 jobs seeded: left out of make test-fast
async def test_a_week_old_failure_is_found_behind_100000_newer_jobs(
    client: AsyncClient,
    worker: Callable[..., Worker],
    arq_pool: ArqRedis,
    settings: Settings,
    report: Callable[[str], None],
) -> None:
    admin = auth(settings, "root", admin=True)
    failed = (await client.post("/send-notification/bounce@example.com")).json()["task_id"]
    await worker().main()
    # It failed (almost) a week ago: FAILED_TTL keeps it; the index says when it failed.
    week_ago = datetime.now(UTC) - timedelta(days=6, hours=23)
    await arq_pool.zadd(keys.FAILED_INDEX, {failed: int(week_ago.timestamp() * 1_000_000)})
    await _seed(arq_pool, 99_000, "run_sleep_task", "default", None)
    await _seed(arq_pool, 1_000, "generate_report", "reports", "alice")
    assert await arq_pool.zcard(keys.ALL_JOBS_INDEX) == 100_001

    response = await client.get("/jobs", params={"status": "FAILURE"}, headers=admin)
    assert [job["id"] for job in response.json()["items"]] == [failed]
    figures = {
        "newest": await _median_ms(client, 20, headers=admin),
        "status=FAILURE": await _median_ms(client, 20, params={"status": "FAILURE"}, headers=admin),
        "name=generate_report": await _median_ms(client, 20, params={"name": "generate_report"}, headers=admin),
        "queue=reports": await _median_ms(client, 20, params={"queue": "reports"}, headers=admin),
        "owner=alice": await _median_ms(client, 20, params={"owner": "alice"}, headers=admin),
    }
    reports = (await client.get("/jobs", params={"queue": "reports", "limit": 100}, headers=admin)).json()["items"]
    assert len(reports) == 100 and {job["name"] for job in reports} == {"generate_report"}
    report(
        "GET /jobs with 100,001 jobs kept, 20 a page, median of 20 (ms): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in figures.items())
    )
