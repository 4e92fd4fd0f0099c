"""The SSE stream through a real uvicorn (ASGITransport would buffer it): pushed changes, an end, a clean close."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from service.auth import create_token
from service.core import keys
from tests.e2e.conftest import Proc, wait_until

pytestmark = pytest.mark.e2e


def events(response: httpx.Response) -> Iterator[dict[str, object]]:
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


def test_a_report_streams_to_its_end(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str]
) -> None:
    url = start_web()
    start_worker()
    headers = {"Authorization": f"Bearer {create_token('alice', env['SECRET_KEY'])}"}
    job_id = httpx.post(f"{url}/reports", json={"rows": 2000}, headers=headers).json()["task_id"]
    with httpx.stream("GET", f"{url}/jobs/{job_id}/events", headers=headers, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        received = list(events(response))  # ends by itself after the terminal status
    statuses = [e["status"] for e in received]
    assert statuses[-1] == "SUCCESS" and statuses.count("SUCCESS") == 1
    assert set(statuses) <= {"PENDING", "STARTED", "SUCCESS"}
    progress = [e["progress"]["current"] for e in received if e["progress"]]  # type: ignore[index]
    assert progress == sorted(progress) and progress[-1] == 2000
    assert len(progress) > 2  # the steps came one by one, pushed as they happened
    assert len({(e["status"], json.dumps(e["progress"])) for e in received}) == len(received)  # no repeats


def test_the_subscription_closes_when_the_client_goes_away(start_web: Callable[[], str], env: dict[str, str]) -> None:
    url = start_web()  # no worker: the job stays PENDING and the stream stays open
    job_id = httpx.post(f"{url}/tasks", json={"type": 1}).json()["task_id"]
    client: Any = redis.Redis.from_url(env["REDIS_URL"])  # redis-py types sync replies as Awaitable | Any
    channel = keys.job_events(job_id)
    with httpx.stream("GET", f"{url}/jobs/{job_id}/events", timeout=30) as response:
        stream = events(response)  # held: dropping the iterator would close the response
        assert next(stream)["status"] == "PENDING"  # sent at once: the subscription follows it
        wait_until(lambda: client.pubsub_numsub(channel) == [(channel.encode(), 1)], "the stream to subscribe")
    wait_until(lambda: client.pubsub_numsub(channel) == [(channel.encode(), 0)], "the subscription to close")
    client.close()


def test_events_for_others_jobs_are_refused_before_streaming(start_web: Callable[[], str], env: dict[str, str]) -> None:
    url = start_web()
    alice = {"Authorization": f"Bearer {create_token('alice', env['SECRET_KEY'])}"}
    job_id = httpx.post(f"{url}/tasks", json={"type": 0}, headers=alice).json()["task_id"]
    assert httpx.get(f"{url}/jobs/{job_id}/events").status_code == 403
    assert httpx.get(f"{url}/jobs/{'0' * 32}/events").status_code == 404


def test_a_finished_job_streams_its_view_without_subscribing(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str]
) -> None:
    url = start_web()
    start_worker()
    job_id = httpx.post(f"{url}/tasks", json={"type": 0}).json()["task_id"]
    wait_until(lambda: httpx.get(f"{url}/tasks/{job_id}").json()["task_status"] == "SUCCESS", "the job to end")
    client: Any = redis.Redis.from_url(env["REDIS_URL"])  # redis-py types sync replies as Awaitable | Any
    client.config_resetstat()
    with httpx.stream("GET", f"{url}/jobs/{job_id}/events", timeout=30) as response:
        assert [e["status"] for e in events(response)] == ["SUCCESS"]
    assert "cmdstat_subscribe" not in client.info("commandstats")
    client.close()
