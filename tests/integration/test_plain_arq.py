"""The job kinds on a plain `arq.worker.Worker`, without this service's worker or hooks: slower, never wrong.

The arq functions made from the kinds must not assume this service's engine: no claim is shortened that no claim
keeper renews (a long job would run twice), an abort goes through arq's own mechanism, and every contract flow
ends as it does on `ServiceWorker`.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from dirty_equals import IsInt, IsPartialDict, IsStr
from httpx import AsyncClient

from service.client import job_deserializer, job_serializer
from service.core import keys
from service.core.connections import web_redis
from service.engine import compat, functions
from service.engine.claims import CLAIM_TTL_S
from service.kinds import load_kinds
from service.settings import Settings, get_settings
from tests.conftest import run_until
from tests.integration.helpers import auth

# arq's own class: `worker_settings` has bound `arq.worker.Worker` to the subclass for arq's CLI.
PlainWorker = compat.arq_class("Worker")


@pytest.fixture
def plain_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A plain worker reads the settings from the environment, as any arq worker would."""
    for name, value in {
        "REDIS_URL": settings.redis_url,
        "DATA_DIR": str(settings.data_dir),
        "SLEEP_SCALE": "0.05",  # a type-3 task runs 1.5 s: long enough to look at while it runs
        "SECRET_KEY": settings.secret_key,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
async def plain_worker(plain_env: None, settings: Settings, arq_pool: ArqRedis) -> AsyncIterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def make(**kwargs: Any) -> Worker:
        w: Worker = PlainWorker(  # arq's own class, found at run time: typed as what it is
            functions(load_kinds()),
            redis_pool=web_redis(settings),
            burst=True,
            poll_delay=0.05,
            handle_signals=False,
            job_serializer=job_serializer,
            job_deserializer=job_deserializer,
            allow_abort_jobs=True,
            keep_result=settings.result_ttl,
            **kwargs,
        )
        assert type(w) is PlainWorker
        workers.append(w)
        return w

    yield make
    for w in workers:
        await w.close()


async def test_the_contract_s_job_flows_on_a_plain_arq_worker(
    client: AsyncClient, plain_worker: Callable[..., Worker], settings: Settings
) -> None:
    alice = auth(settings, "alice")
    task = (await client.post("/tasks", json={"type": 0})).json()["task_id"]
    note = (await client.post("/send-notification/ada@example.com?q=plain")).json()["task_id"]
    flaky = (await client.post("/send-notification/flaky@example.com")).json()["task_id"]
    bounce = (await client.post("/send-notification/bounce@example.com")).json()["task_id"]
    report = (await client.post("/reports", json={"rows": 4}, headers=alice)).json()["task_id"]
    await plain_worker().main()
    await plain_worker(queue_name=keys.queue_key("reports")).main()  # a plain arq worker serves one queue

    async def view(job_id: str) -> dict[str, Any]:
        return dict((await client.get(f"/jobs/{job_id}", headers=alice)).json())

    assert await view(task) == IsPartialDict(status="SUCCESS", result=True, attempt=1, started_at=IsStr())
    assert (await client.get(f"/tasks/{task}")).json() == {
        "task_id": task,
        "task_status": "SUCCESS",
        "task_result": True,
    }
    assert await view(flaky) == IsPartialDict(status="SUCCESS", attempt=3)  # two transient failures, retried
    assert await view(bounce) == IsPartialDict(status="FAILURE", error=IsPartialDict(type="PermanentFailure"))
    assert await view(report) == IsPartialDict(
        status="SUCCESS", owner="alice", result={"rows": 4, "bytes": IsInt(gt=0)}
    )
    assert (await client.get(f"/reports/{report}/download", headers=alice)).status_code == 200
    lines = settings.notifications_log.read_text().splitlines()
    assert sum(f"[{note}]" in line for line in lines) == 2  # the notification and its query, once each
    assert sum(f"[{flaky}]" in line for line in lines) == 1


async def test_a_plain_worker_keeps_arq_s_claim(
    client: AsyncClient, plain_worker: Callable[..., Worker], arq_pool: ArqRedis
) -> None:
    # Without a claim keeper nothing renews a short claim: the job must keep arq's (its timeout + 10 s), or a job
    # longer than CLAIM_TTL_S would be taken by a second worker while the first still runs it.
    job_id = (await client.post("/tasks", json={"type": 3})).json()["task_id"]
    running = asyncio.create_task(plain_worker().main())

    async def started() -> bool:
        return bool((await client.get(f"/jobs/{job_id}")).json()["started_at"])

    await run_until(started, "the job's start")
    assert await arq_pool.pttl(in_progress_key_prefix + job_id) > CLAIM_TTL_S * 1000
    await running


async def test_a_plain_worker_honours_an_abort(client: AsyncClient, plain_worker: Callable[..., Worker]) -> None:
    job_id = (await client.post("/tasks", json={"type": 3})).json()["task_id"]
    running = asyncio.create_task(plain_worker().main())

    async def started() -> bool:
        return bool((await client.get(f"/jobs/{job_id}")).json()["started_at"])

    await run_until(started, "the job's start")
    assert (await client.post(f"/jobs/{job_id}/abort")).status_code == 202
    await running  # arq's abort check cancels it: the burst worker ends with it, long before the job's 1.5 s
    assert (await client.get(f"/jobs/{job_id}")).json()["status"] == "REVOKED"
