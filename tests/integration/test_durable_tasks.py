"""From BackgroundTasks to a durable queue by changing one annotation: the FastAPI docs' example handler, in an
app of its own (not this service's), with its tasks run by a worker."""

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
from arq.connections import ArqRedis
from arq.worker import Worker
from httpx import ASGITransport, AsyncClient

from service.dev.server import ValkeyServer
from service.settings import Settings, get_settings
from service.web import background
from tests import docs_app
from tests.conftest import make_settings

JOB_KINDS = "tests.docs_app:write_notification,tests.docs_app:append_slowly"


@pytest.fixture
def docs_env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The docs' app reads the service's settings from the environment, and writes log.txt where it runs."""
    for name, value in {
        "REDIS_URL": settings.redis_url,
        "SECRET_KEY": settings.secret_key,
        "DATA_DIR": str(settings.data_dir),
        "JOB_KINDS": JOB_KINDS,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    yield workdir
    get_settings.cache_clear()


@pytest.fixture
async def docs_client(docs_env: Path) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=docs_app.app), base_url="http://docs") as client:
        yield client
    if background._shared is not None:  # the pool the dependency made for an app without this service's state
        await background._shared.arq.aclose(close_connection_pool=True)
        background._shared = None


def team_worker(worker: Callable[..., Worker], tmp_path: Path, settings: Settings) -> Worker:
    return worker(settings=make_settings(tmp_path, settings.redis_url, job_kinds=JOB_KINDS.split(",")))


async def test_the_docs_example_runs_on_a_worker_as_a_job(
    docs_client: AsyncClient,
    client: AsyncClient,
    worker: Callable[..., Worker],
    docs_env: Path,
    tmp_path: Path,
    settings: Settings,
) -> None:
    response = await docs_client.post("/send-notification/ada@example.com")
    assert response.status_code == 200
    assert response.json() == {"message": "Notification sent in the background"}
    assert not (docs_env / "log.txt").exists()  # not run by the web process, after the response or otherwise
    [job] = (await client.get("/jobs", headers=admin(settings))).json()["items"]
    assert job["name"] == "write_notification" and job["status"] == "PENDING"
    await team_worker(worker, tmp_path, settings).main()
    assert (docs_env / "log.txt").read_text() == "notification for ada@example.com: some notification"
    assert (await client.get(f"/jobs/{job['id']}")).json()["status"] == "SUCCESS"


async def test_the_handler_reads_its_job_s_id_and_the_contract_applies(
    docs_client: AsyncClient, client: AsyncClient, arq_pool: ArqRedis, settings: Settings
) -> None:
    key = {"Idempotency-Key": "slow-1"}
    first = await docs_client.post("/slow/ada@example.com", headers=key)
    again = await docs_client.post("/slow/ada@example.com", headers=key)
    assert first.json() == again.json()  # the repeat names the job the first request queued
    assert await arq_pool.zcard("arq:queue") == 1
    job_id = first.json()["task_id"]
    assert (await client.get(f"/jobs/{job_id}")).json()["status"] == "PENDING"
    assert (await client.post(f"/jobs/{job_id}/abort")).json()["status"] == "REVOKED"
    # Signed in: the job is the caller's own.
    token = admin(settings, "ann")
    mine = (await docs_client.post("/slow/ann@example.com", headers=token)).json()["task_id"]
    assert (await client.get(f"/jobs/{mine}")).status_code == 403
    assert (await client.get(f"/jobs/{mine}", headers=token)).json()["owner"] == "ann"


async def test_a_call_that_does_not_fit_is_a_422_and_queues_nothing(
    docs_client: AsyncClient, arq_pool: ArqRedis
) -> None:
    response = await docs_client.post("/wrong/ada@example.com")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_many_arguments"
    assert await arq_pool.zcard("arq:queue") == 0


async def test_redis_down_is_a_503_and_no_job(
    redis_server_factory: Callable[..., ValkeyServer], monkeypatch: pytest.MonkeyPatch, docs_client: AsyncClient
) -> None:
    server = redis_server_factory()
    monkeypatch.setenv("REDIS_URL", server.url)
    get_settings.cache_clear()
    server.stop()
    response = await docs_client.post("/send-notification/ada@example.com")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    server.start()
    check = redis.Redis.from_url(server.url)
    try:
        assert check.zcard("arq:queue") == 0
    finally:
        check.close()


def admin(settings: Settings, user: str = "ops") -> dict[str, str]:
    from tests.integration.helpers import auth

    return auth(settings, user, admin=user == "ops")
