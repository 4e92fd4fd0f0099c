"""Webhooks against a real HTTP receiver (uvicorn on a free loopback port): signed, retried, refused, not redirected."""

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from arq.worker import Worker
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from service.auth import create_token
from service.dev.server import ValkeyServer, free_port
from service.settings import Settings
from service.web.app import create_app
from tests.conftest import TEST_SECRET, make_settings, run_until
from tests.integration.helpers import auth

SECRET = "webhook-test-secret"


@dataclass
class Answer:
    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b"ok"
    delay_s: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook receiver: answers each request with the next scripted `Answer` (200 once they run out)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.answers: list[Answer] = []
        self.requests: asyncio.Queue[Received] = asyncio.Queue()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        await self.requests.put(Received(scope["path"], headers, body))
        answer = self.answers.pop(0) if self.answers else Answer()
        await asyncio.sleep(answer.delay_s)
        await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def next(self) -> Received:
        return await asyncio.wait_for(self.requests.get(), 20)  # a hang guard, not a speed check


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver()
    config = uvicorn.Config(hooks, host="127.0.0.1", port=hooks.port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  # uvicorn's own readiness flag
        await asyncio.sleep(0.01)
    yield hooks
    server.should_exit = True
    await serving


@pytest.fixture
def hook_settings(tmp_path: Path, redis_server: ValkeyServer, receiver: Receiver) -> Settings:
    return make_settings(
        tmp_path,
        redis_server.url,
        webhook_allowed_hosts=[f"127.0.0.1:{receiver.port}"],
        webhook_secret=SECRET,
        webhook_timeout_s=2,
    )


@pytest.fixture
async def hook_client(hook_settings: Settings, arq_pool: Any) -> AsyncIterator[AsyncClient]:
    application = create_app(hook_settings)
    async with (
        LifespanManager(application) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


@pytest.fixture
async def running_worker(worker: Callable[..., Worker], hook_settings: Settings) -> AsyncIterator[None]:
    task = asyncio.create_task(worker(burst=False, poll_delay=0.05, settings=hook_settings).main())
    yield
    task.cancel()


def task_calling(receiver: Receiver, path: str = "/hook", **more: object) -> dict[str, object]:
    """A `POST /jobs` body: an instant task whose webhook goes to `path` on the receiver."""
    return {
        "name": "run_sleep_task",
        "args": {"type": 0},
        "callback_url": f"http://127.0.0.1:{receiver.port}{path}",
        **more,
    }


def signed(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token('root', TEST_SECRET, admin=True)}"}


async def jobs_named(client: AsyncClient, name: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/jobs", params={"limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return [job for job in response.json()["items"] if job["name"] == name]


@pytest.mark.usefixtures("running_worker")
async def test_a_finished_job_posts_its_owner_s_view_signed(
    hook_client: AsyncClient, receiver: Receiver, hook_settings: Settings
) -> None:
    alice = auth(hook_settings, "alice")
    body = task_calling(receiver, "/hooks/done?source=test")
    created = await hook_client.post("/jobs", json=body, headers=alice)
    assert created.status_code == 202, created.text
    job_id = created.json()["task_id"]

    delivery = await receiver.next()
    assert delivery.path == "/hooks/done"
    assert delivery.headers["x-signature"] == signed(delivery.body)
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["x-job-id"] == job_id
    assert delivery.headers["host"] == f"127.0.0.1:{receiver.port}"
    sent = json.loads(delivery.body)
    # The job's view as its owner reads it: the arguments (alice owns it), no traceback, the terminal status.
    assert sent == (await hook_client.get(f"/jobs/{job_id}", headers=alice)).json()
    assert sent["status"] == "SUCCESS"
    assert sent["args"] == {"type": 0}

    # The delivery is a job of its own, alice's, listed and ending SUCCESS.
    async def delivered() -> list[dict[str, Any]]:
        hooks = await jobs_named(hook_client, "webhook", alice)
        return [h for h in hooks if h["status"] == "SUCCESS"]

    (hook,) = await run_until(delivered, "the webhook job's success")
    assert hook["owner"] == "alice"
    assert hook["result"] == {"job_id": job_id, "status_code": 200}
    kinds = {k["name"]: k for k in (await hook_client.get("/kinds")).json()["items"]}
    assert kinds["webhook"]["internal"] is True


@pytest.mark.usefixtures("running_worker")
async def test_a_500_is_retried_with_back_off_until_a_2xx(
    hook_client: AsyncClient, receiver: Receiver, hook_settings: Settings
) -> None:
    receiver.answers = [Answer(500, body=b"down for maintenance"), Answer(503), Answer(200)]
    job_id = (await hook_client.post("/jobs", json=task_calling(receiver))).json()["task_id"]
    tries = [await receiver.next() for _ in range(3)]
    assert [t.headers["x-webhook-attempt"] for t in tries] == ["1", "2", "3"]
    assert {t.body for t in tries} == {tries[0].body}  # the same view, signed the same way, each time
    assert all(t.headers["x-signature"] == signed(t.body) for t in tries)
    (hook,) = await run_until(
        lambda: _finished_hooks(hook_client), "the webhook job's end"
    )  # anonymous job: an anonymous delivery
    assert hook["status"] == "SUCCESS"
    assert hook["attempt"] == 3
    assert json.loads(tries[0].body)["id"] == job_id


async def _finished_hooks(client: AsyncClient) -> list[dict[str, Any]]:
    hooks = await jobs_named(client, "webhook", admin())
    return [h for h in hooks if h["status"] in {"SUCCESS", "FAILURE"}]


@pytest.mark.usefixtures("running_worker")
async def test_a_redirect_is_not_followed(hook_client: AsyncClient, receiver: Receiver) -> None:
    elsewhere = f"http://127.0.0.1:{receiver.port}/elsewhere"
    receiver.answers = [Answer(302, headers=[(b"location", elsewhere.encode())]), Answer(200)]
    body = task_calling(receiver)
    await hook_client.post("/jobs", json=body)
    first, second = await receiver.next(), await receiver.next()
    assert first.path == second.path == "/hook"  # tried again where it was told, never at the Location
    assert second.headers["x-webhook-attempt"] == "2"


@pytest.mark.usefixtures("running_worker")
async def test_a_receiver_that_does_not_answer_in_time_is_tried_again(
    hook_client: AsyncClient, receiver: Receiver
) -> None:
    receiver.answers = [Answer(200, delay_s=5), Answer(200)]  # webhook_timeout_s is 2
    body = task_calling(receiver, "/h")
    await hook_client.post("/jobs", json=body)
    first, second = await receiver.next(), await receiver.next()
    assert (first.headers["x-webhook-attempt"], second.headers["x-webhook-attempt"]) == ("1", "2")
    (hook,) = await run_until(lambda: _finished_hooks(hook_client), "the webhook job's end")
    assert hook["status"] == "SUCCESS"


@pytest.mark.usefixtures("running_worker")
async def test_a_job_revoked_before_it_ran_gets_its_webhook(hook_client: AsyncClient, receiver: Receiver) -> None:
    body = task_calling(receiver, delay_s=3600)
    job_id = (await hook_client.post("/jobs", json=body)).json()["task_id"]
    assert (await hook_client.post(f"/jobs/{job_id}/abort")).json()["status"] == "REVOKED"
    delivery = await receiver.next()
    assert json.loads(delivery.body)["status"] == "REVOKED"


async def test_a_failed_job_s_webhook_shows_no_traceback(
    hook_client: AsyncClient, receiver: Receiver, worker: Callable[..., Worker], hook_settings: Settings
) -> None:
    body = {
        "name": "send_notification",
        "args": {"email": "bounce@example.com"},
        "callback_url": f"http://127.0.0.1:{receiver.port}/hook",
    }
    response = await hook_client.post("/jobs", json=body)
    assert response.status_code == 202, response.text
    task = asyncio.create_task(worker(burst=False, poll_delay=0.05, settings=hook_settings).main())
    try:
        sent = json.loads((await receiver.next()).body)
    finally:
        task.cancel()
    assert sent["status"] == "FAILURE"
    assert set(sent["error"]) == {"type", "message"}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:1/hook", "not in WEBHOOK_ALLOWED_HOSTS"),  # the receiver's host, another port
        ("http://10.0.0.7/hook", "not in WEBHOOK_ALLOWED_HOSTS"),  # private, not listed
        ("http://169.254.169.254/latest/meta-data", "not in WEBHOOK_ALLOWED_HOSTS"),  # link-local: metadata
        ("http://[::1]:8080/hook", "not in WEBHOOK_ALLOWED_HOSTS"),
        ("http://hooks.example.com/hook", "not in WEBHOOK_ALLOWED_HOSTS"),
        ("ftp://127.0.0.1/hook", "http:// or https://"),
        ("/relative", "http:// or https://"),
        ("http://user:pw@127.0.0.1/hook", "credentials"),
        ("http://127.0.0.1:99999/hook", "not a valid URL"),
    ],
)
async def test_a_callback_not_allowed_is_a_422_and_queues_nothing(
    hook_client: AsyncClient, arq_pool: Any, url: str, why: str
) -> None:
    body = {"name": "run_sleep_task", "args": {"type": 0}, "callback_url": url}
    response = await hook_client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "callback_url"]
    assert why in error["msg"]
    assert await arq_pool.zcard("arq:queue") == 0


async def test_a_listed_name_that_resolves_to_loopback_is_refused(
    tmp_path: Path, redis_server: ValkeyServer, arq_pool: Any
) -> None:
    # "localhost" is listed by name, but its address (loopback) is not: the name cannot smuggle a private address.
    settings = make_settings(tmp_path, redis_server.url, webhook_allowed_hosts=["localhost"], webhook_secret=SECRET)
    async with (
        LifespanManager(create_app(settings)) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        body = {"name": "run_sleep_task", "args": {"type": 0}, "callback_url": "http://localhost:8080/hook"}
        response = await client.post("/jobs", json=body)
    assert response.status_code == 422
    assert "not a public address" in response.json()["detail"][0]["msg"]


async def test_webhooks_are_off_without_a_secret(client: AsyncClient) -> None:
    body = {"name": "run_sleep_task", "args": {"type": 0}, "callback_url": "http://127.0.0.1/hook"}
    response = await client.post("/jobs", json=body)
    assert response.status_code == 422
    assert "WEBHOOK_SECRET" in response.json()["detail"][0]["msg"]


async def test_the_delivery_checks_the_allowlist_again(
    hook_client: AsyncClient,
    receiver: Receiver,
    worker: Callable[..., Worker],
    tmp_path: Path,
    redis_server: ValkeyServer,
) -> None:
    """Allowed when it was queued, no longer when it is delivered: refused for good, and nothing is sent."""
    body = task_calling(receiver, "/h")
    assert (await hook_client.post("/jobs", json=body)).status_code == 202
    stricter = make_settings(tmp_path, redis_server.url, webhook_allowed_hosts=[], webhook_secret=SECRET)
    await worker(settings=stricter).main()
    await worker(settings=stricter).main()  # the delivery queued as the job ended
    (hook,) = await _finished_hooks(hook_client)
    assert hook["status"] == "FAILURE"
    assert hook["error"]["type"] == "PermanentFailure"
    assert "not in WEBHOOK_ALLOWED_HOSTS" in hook["error"]["message"]
    assert receiver.requests.empty()


async def test_a_job_run_again_keeps_its_callback(
    hook_client: AsyncClient, receiver: Receiver, worker: Callable[..., Worker], hook_settings: Settings
) -> None:
    body = task_calling(receiver, delay_s=3600)
    job_id = (await hook_client.post("/jobs", json=body)).json()["task_id"]
    await hook_client.post(f"/jobs/{job_id}/abort")
    again = (await hook_client.post(f"/jobs/{job_id}/retry")).json()["task_id"]
    task = asyncio.create_task(worker(burst=False, poll_delay=0.05, settings=hook_settings).main())
    try:
        views = {json.loads((await receiver.next()).body)["id"] for _ in range(2)}
    finally:
        task.cancel()
    assert views == {job_id, again}


async def test_a_webhook_cannot_be_posted_by_a_client(hook_client: AsyncClient, receiver: Receiver) -> None:
    """Its delivery signs whatever job it names: a client must not be able to queue one."""
    body = {"name": "webhook", "args": {"job_id": "x", "url": f"http://127.0.0.1:{receiver.port}/"}}
    response = await hook_client.post("/jobs", json=body)
    assert response.status_code == 422
