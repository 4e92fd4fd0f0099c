"""Generic tasks through the HTTP API, with the real Redis server and an in-process arq worker."""

import asyncio
import json
import time
from collections.abc import Callable

from arq.connections import ArqRedis
from arq.worker import Worker
from dirty_equals import IsDatetime, IsPartialDict, IsStr
from httpx import AsyncClient

from service.core.enqueue import enqueue
from service.settings import Settings
from tests.conftest import run_until
from tests.integration.helpers import auth


async def test_the_tutorials_integration_test(client: AsyncClient, worker: Callable[..., Worker]) -> None:
    # Ported from testdrivenio/fastapi-celery: POST type 1, PENDING, loop while PENDING, then SUCCESS + true.
    response = await client.post("/tasks", content=json.dumps({"type": 1}))
    assert response.status_code == 201
    task_id = response.json()["task_id"]
    assert task_id

    response = await client.get(f"/tasks/{task_id}")
    assert response.status_code == 200
    assert response.json() == {"task_id": task_id, "task_status": "PENDING", "task_result": None}

    run = asyncio.create_task(worker().main())
    content = response.json()
    while content["task_status"] == "PENDING":
        # Each GET goes through Redis and so yields to the worker running in this loop.
        content = (await client.get(f"/tasks/{task_id}")).json()
    assert content == {"task_id": task_id, "task_status": "SUCCESS", "task_result": True}
    await run


async def test_a_json_body_without_content_type_is_accepted(client: AsyncClient) -> None:
    response = await client.post("/tasks", content=b'{"type": 0}', headers={"content-type": ""})
    assert response.status_code == 201, response.text
    assert response.json() == {"task_id": IsStr(min_length=32)}


async def test_job_view_shows_started_while_running(client: AsyncClient, worker: Callable[..., Worker]) -> None:
    task_id = (await client.post("/tasks", json={"type": 3})).json()["task_id"]
    queued = (await client.get(f"/jobs/{task_id}")).json()
    assert queued == {
        "id": task_id,
        "name": "run_sleep_task",
        "status": "PENDING",
        "owner": None,
        "enqueued_at": IsDatetime(iso_string=True),
        "started_at": None,
        "finished_at": None,
        "attempt": 0,
        "progress": None,
        "result": None,
        "error": None,
        "worker": None,
        "queue": "default",
        "scheduled_for": None,
        "tries": [],
    }
    run = asyncio.create_task(worker().main())

    async def started() -> dict[str, object] | None:
        view = (await client.get(f"/jobs/{task_id}")).json()
        # arq claims the job a moment before the job's wrapper records its start: wait for both.
        return view if view["status"] == "STARTED" and view["started_at"] else None

    running = await run_until(started, "the job to start")
    assert running == IsPartialDict(status="STARTED", attempt=1, started_at=IsStr(), finished_at=None)
    assert running["tries"] == [
        {"attempt": 1, "started_at": running["started_at"], "worker": running["worker"], "error": None}
    ]
    # The tutorial's endpoint keeps Celery's default: PENDING while the task runs.
    assert (await client.get(f"/tasks/{task_id}")).json()["task_status"] == "PENDING"
    await run
    done = (await client.get(f"/jobs/{task_id}")).json()
    assert done == IsPartialDict(status="SUCCESS", result=True, attempt=1, error=None, finished_at=IsStr())
    assert done["enqueued_at"] <= done["started_at"] <= done["finished_at"]


async def test_a_failed_job_reads_failure_with_its_error(
    client: AsyncClient, arq_pool: ArqRedis, worker: Callable[..., Worker]
) -> None:
    # A job whose function no worker knows fails in arq itself: the real failure path, end to end.
    job_id = (await enqueue(arq_pool, "no_such_function", {}, record_ttl_s=60)).job_id
    await worker().main()
    view = (await client.get(f"/jobs/{job_id}")).json()
    assert view == IsPartialDict(status="FAILURE", result=None)
    assert view["error"] == {"type": "JobExecutionFailed", "message": "function 'no_such_function' not found"}
    task = (await client.get(f"/tasks/{job_id}")).json()
    assert task == {"task_id": job_id, "task_status": "FAILURE", "task_result": "function 'no_such_function' not found"}


async def test_an_owned_task_is_read_by_its_owner_and_admins_only(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    task_id = (await client.post("/tasks", json={"type": 0}, headers=auth(settings, "alice"))).json()["task_id"]
    await worker().main()
    for headers in (auth(settings, "alice"), auth(settings, "ops", admin=True)):
        response = await client.get(f"/tasks/{task_id}", headers=headers)
        assert response.json() == {"task_id": task_id, "task_status": "SUCCESS", "task_result": True}
    for headers in ({}, auth(settings, "bob")):
        assert (await client.get(f"/tasks/{task_id}", headers=headers)).status_code == 403


async def test_unknown_ids_are_404(client: AsyncClient) -> None:
    for path in ("/tasks/0123456789abcdef0123456789abcdef", "/jobs/nope", "/tasks/%00", "/jobs/..%2F..%2Fetc"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"detail": IsStr()}


async def test_a_planted_pickle_does_not_run(
    client: AsyncClient, arq_pool: ArqRedis, worker: Callable[..., Worker], tmp_path
) -> None:
    marker = tmp_path / "pwned"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    await arq_pool.psetex("arq:job:planted", 60_000, payload)
    await arq_pool.zadd("arq:queue", {"planted": int(time.time() * 1000)})
    assert (await client.get("/jobs/planted")).json()["status"] == "PENDING"
    await worker().main()
    view = (await client.get("/jobs/planted")).json()
    assert view["status"] == "FAILURE"
    assert view["error"]["type"] == "DeserializationError"
    assert not marker.exists()
