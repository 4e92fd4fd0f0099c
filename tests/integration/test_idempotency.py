"""Idempotency-Key: a repeat is the same caller sending the same request; the same key with another request is a
422 that queues nothing, and an anonymous caller's key never returns a job another request created."""

import asyncio

import pytest
from arq.connections import ArqRedis
from httpx import AsyncClient

from service.settings import Settings
from tests.integration.helpers import auth

KEY = {"Idempotency-Key": "order-42"}


async def test_the_same_request_again_gives_the_first_job(client: AsyncClient, arq_pool: ArqRedis) -> None:
    first = await client.post("/tasks", json={"type": 1}, headers=KEY)
    # The same JSON value, spelled differently (spacing), is the same request.
    again = await client.post("/tasks", content=b'{ "type" : 1 }', headers={**KEY, "content-type": "application/json"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert await arq_pool.zcard("arq:queue") == 1


async def test_a_query_in_another_order_is_the_same_request(client: AsyncClient, arq_pool: ArqRedis) -> None:
    url = "/send-notification/a@example.com"
    first = await client.post(f"{url}?q=x&q=y", headers=KEY)
    again = await client.post(f"{url}?q=x&q=y", headers=KEY)
    assert (first.status_code, again.status_code) == (202, 200)
    assert await arq_pool.zcard("arq:queue") == 1


@pytest.mark.parametrize(
    ("method_path", "body"),
    [
        ("/tasks", {"type": 2}),  # a different body
        ("/send-notification/a@example.com", None),  # a different path
        ("/tasks?x=1", {"type": 1}),  # a different query
        ("/jobs", {"name": "run_sleep_task", "args": {"type": 1}}),  # another route, the same job
    ],
)
async def test_the_same_key_with_a_different_request_is_refused(
    client: AsyncClient, arq_pool: ArqRedis, method_path: str, body: dict[str, object] | None
) -> None:
    first = await client.post("/tasks", json={"type": 1}, headers=KEY)
    assert first.status_code == 201
    response = await client.post(method_path, json=body, headers=KEY)
    assert response.status_code == 422
    assert "different request" in response.json()["detail"]
    assert first.json()["task_id"] not in response.text
    assert await arq_pool.zcard("arq:queue") == 1  # nothing new was queued


async def test_two_anonymous_callers_never_see_each_other_s_job(client: AsyncClient, arq_pool: ArqRedis) -> None:
    # The case: a notification queued under a common key, then someone else's task with the same key.
    note = await client.post("/send-notification/victim@example.com", headers=KEY)
    guess = await client.post("/tasks", json={"type": 0}, headers=KEY)
    assert note.status_code == 202
    assert guess.status_code == 422 and note.json()["task_id"] not in guess.text
    assert await arq_pool.zcard("arq:queue") == 1


async def test_keys_stay_per_user(client: AsyncClient, arq_pool: ArqRedis, settings: Settings) -> None:
    mine = await client.post("/tasks", json={"type": 0}, headers={**KEY, **auth(settings, "ann")})
    theirs = await client.post("/tasks", json={"type": 0}, headers={**KEY, **auth(settings, "ben")})
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json() != theirs.json()


async def test_concurrent_first_requests_with_one_key_make_one_job(client: AsyncClient, arq_pool: ArqRedis) -> None:
    responses = await asyncio.gather(*(client.post("/tasks", json={"type": 0}, headers=KEY) for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["task_id"] for r in responses}) == 1
    assert await arq_pool.zcard("arq:queue") == 1
