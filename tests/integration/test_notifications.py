"""Notifications: validated input, one log line per job (even when the job runs again), idempotent POSTs."""

import asyncio
import re
from collections.abc import Callable

import pytest
from arq.connections import ArqRedis
from arq.worker import Worker
from dirty_equals import IsStr
from httpx import AsyncClient

from service.core import keys
from service.kinds import JobContext
from service.kinds.notifications import NotificationArgs, send_notification
from service.settings import Settings
from tests.integration.helpers import auth

LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00 notification for (?P<rest>.*) \[(?P<id>[0-9a-f]{32})\]$"
)


def log_lines(settings: Settings) -> list[str]:
    path = settings.notifications_log
    return path.read_text().splitlines() if path.exists() else []


async def test_a_notification_is_logged_once(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    response = await client.post("/send-notification/ada@example.com", json={"message": "your report is ready"})
    assert response.status_code == 202
    assert response.json() == {"message": "Notification sent in the background", "task_id": IsStr(min_length=32)}
    task_id = response.json()["task_id"]
    assert log_lines(settings) == []  # nothing before a worker runs it
    await worker().main()
    [line] = log_lines(settings)
    match = LINE.match(line)
    assert match and match["rest"] == "ada@example.com: your report is ready" and match["id"] == task_id
    assert (await client.get(f"/tasks/{task_id}")).json()["task_status"] == "SUCCESS"


async def test_query_and_default_message(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    task_id = (await client.post("/send-notification/bob@example.com", params={"q": "invoices 2026"})).json()["task_id"]
    await worker().main()
    first, second = log_lines(settings)
    assert first.endswith(f"notification for bob@example.com: some notification [{task_id}]")
    assert second == f"found query: invoices 2026 [{task_id}]"


async def test_running_a_finished_job_again_adds_no_line(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings, arq_pool: ArqRedis
) -> None:
    task_id = (await client.post("/send-notification/cy@example.com")).json()["task_id"]
    await worker().main()
    assert len(log_lines(settings)) == 1
    args = NotificationArgs(email="cy@example.com")
    await send_notification(JobContext(task_id, 1, settings, arq_pool), args)
    assert len(log_lines(settings)) == 1
    # A worker that died after writing but before marking the effect: the re-run (try 2) finds the line.
    await arq_pool.delete(keys.effect_done(task_id, "notification"))
    await send_notification(JobContext(task_id, 2, settings, arq_pool), args)
    assert len(log_lines(settings)) == 1


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/send-notification/not-an-email", {}),
        ("/send-notification/a@b", {}),
        ("/send-notification/x@example.com", {"json": {"message": "m" * 1001}}),
        ("/send-notification/x@example.com", {"json": {"message": "forged\n2026-01-01 notification for root"}}),
        ("/send-notification/x@example.com", {"json": {"message": "line\u2028separator"}}),
        (
            "/send-notification/x@example.com",
            {"content": b'{"message": "\\ud800"}', "headers": {"content-type": "application/json"}},
        ),
        ("/send-notification/x@example.com", {"json": {"message": 5}}),
        ("/send-notification/x@example.com", {"json": {"message": "hi", "to": "y"}}),
        ("/send-notification/x@example.com", {"params": {"q": "a\rb"}}),
        ("/send-notification/x@example.com", {"params": {"q": "q" * 1001}}),
    ],
)
async def test_bad_notifications_are_422(
    client: AsyncClient, arq_pool: ArqRedis, path: str, kwargs: dict[str, object]
) -> None:
    response = await client.post(path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 422, response.text
    assert await arq_pool.zcard("arq:queue") == 0


async def test_fifty_concurrent_repeats_make_one_job(
    client: AsyncClient, arq_pool: ArqRedis, settings: Settings
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    responses = await asyncio.gather(
        *(client.post("/send-notification/d@example.com", headers=headers) for _ in range(50))
    )
    assert sorted(r.status_code for r in responses) == [200] * 49 + [202]
    assert len({r.json()["task_id"] for r in responses}) == 1
    assert await arq_pool.zcard("arq:queue") == 1
    # The key is scoped to the user: another user's (or an anonymous) call with the same key is a new job.
    other = await client.post("/send-notification/d@example.com", headers={**headers, **auth(settings, "eve")})
    assert other.status_code == 202 and other.json()["task_id"] != responses[0].json()["task_id"]
    assert await arq_pool.zcard("arq:queue") == 2


async def test_idempotency_on_tasks_too(client: AsyncClient, arq_pool: ArqRedis) -> None:
    first = await client.post("/tasks", json={"type": 0}, headers={"Idempotency-Key": "k"})
    again = await client.post("/tasks", json={"type": 0}, headers={"Idempotency-Key": "k"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert (await client.post("/tasks", json={"type": 0}, headers={"Idempotency-Key": "k" * 256})).status_code == 422
