"""`POST /jobs/batch`: up to 1000 jobs validated all or nothing and queued in one Redis round trip, under one quota
check and one Idempotency-Key."""

from collections.abc import Callable
from typing import Any

from arq.connections import ArqRedis
from arq.worker import Worker
from httpx import AsyncClient

from service.core import keys
from service.settings import Settings
from tests.integration.helpers import auth


def sleep(task_type: int = 0) -> dict[str, Any]:
    return {"name": "run_sleep_task", "args": {"type": task_type}}


async def _queued(redis: ArqRedis) -> int:
    due = await redis.zcard(keys.queue_key(keys.DEFAULT_QUEUE))
    return int(due) + int(await redis.zcard(keys.queue_key("reports")))


async def _script_calls(redis: ArqRedis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("eval", "evalsha"))


async def test_a_batch_is_queued_in_order_in_one_script_call(
    client: AsyncClient, arq_pool: ArqRedis, worker: Callable[..., Worker]
) -> None:
    jobs = [sleep(n % 2) for n in range(40)] + [{"name": "send_notification", "args": {"email": "ada@example.com"}}]
    await client.post("/jobs/batch", json={"jobs": [sleep()]})  # the server learns the script (EVALSHA, then EVAL)
    before = await _script_calls(arq_pool)
    answer = await client.post("/jobs/batch", json={"jobs": jobs})
    assert answer.status_code == 202, answer.text
    assert await _script_calls(arq_pool) == before + 1
    task_ids = answer.json()["task_ids"]
    assert len(task_ids) == len(set(task_ids)) == 41
    views = [(await client.get(f"/jobs/{task_id}")).json() for task_id in task_ids]
    assert [view["name"] for view in views] == ["run_sleep_task"] * 40 + ["send_notification"]
    await worker().main()
    assert {(await client.get(f"/jobs/{task_id}")).json()["status"] for task_id in task_ids} == {"SUCCESS"}


async def test_one_bad_job_is_a_422_naming_its_index_and_nothing_is_queued(
    client: AsyncClient, arq_pool: ArqRedis
) -> None:
    answer = await client.post(
        "/jobs/batch", json={"jobs": [sleep(), sleep(), {"name": "run_sleep_task", "args": {"type": 7}}]}
    )
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["loc"][:3] == ["body", "jobs", 2]
    unknown = await client.post("/jobs/batch", json={"jobs": [sleep(), {"name": "no_such_kind", "args": {}}]})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"][:3] == ["body", "jobs", 1]
    bodies: list[dict[str, Any]] = [
        {"jobs": []},
        {"jobs": [sleep()] * 1001},
        {"jobs": sleep()},
        {"jobs": [sleep()], "extra": 1},
    ]
    for body in bodies:
        assert (await client.post("/jobs/batch", json=body)).status_code == 422
    refused = await client.post(
        "/jobs/batch", json={"jobs": [sleep(), {**sleep(), "callback_url": "http://169.254.169.254/"}]}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "jobs", 1, "callback_url"]
    owned = await client.post("/jobs/batch", json={"jobs": [sleep(), {"name": "generate_report", "args": {}}]})
    assert owned.status_code == 401
    assert "jobs[1]" in owned.json()["detail"]
    assert await _queued(arq_pool) == 0


async def test_a_batch_past_the_quota_is_refused_whole(
    client: AsyncClient, arq_pool: ArqRedis, settings: Settings
) -> None:
    headers = auth(settings, "ada")
    first = await client.post("/jobs/batch", json={"jobs": [sleep()] * 60}, headers=headers)
    assert first.status_code == 202
    over = await client.post("/jobs/batch", json={"jobs": [sleep()] * 41}, headers=headers)
    assert over.status_code == 429
    assert "Retry-After" in over.headers
    assert await _queued(arq_pool) == 60
    fits = await client.post("/jobs/batch", json={"jobs": [sleep()] * 40}, headers=headers)
    assert fits.status_code == 202
    listed = (await client.get("/jobs", params={"limit": 100}, headers=headers)).json()["items"]
    assert len(listed) == 100


async def test_an_idempotency_key_covers_the_whole_batch(client: AsyncClient, arq_pool: ArqRedis) -> None:
    body = {"jobs": [sleep(0), sleep(1), sleep(2)]}
    first = await client.post("/jobs/batch", json=body, headers={"Idempotency-Key": "b-1"})
    repeat = await client.post("/jobs/batch", json=body, headers={"Idempotency-Key": "b-1"})
    assert (first.status_code, repeat.status_code) == (202, 200)
    assert repeat.json() == first.json()
    changed = await client.post("/jobs/batch", json={"jobs": [sleep(0)]}, headers={"Idempotency-Key": "b-1"})
    assert changed.status_code == 422
    assert await _queued(arq_pool) == 3
