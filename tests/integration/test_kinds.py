"""Job kinds, declared once: GET /kinds, POST /jobs, the v1 routes as aliases, and a kind added in a module of its
own (as a team adopting the service adds theirs)."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from arq.worker import Worker
from asgi_lifespan import LifespanManager
from dirty_equals import IsInt, IsPartialDict, IsStr
from httpx import ASGITransport, AsyncClient

from service.core import keys
from service.settings import Settings
from service.web.app import create_app
from tests.conftest import make_settings, run_until
from tests.integration.helpers import auth

V1_KINDS = {
    "run_sleep_task": {"queue": "default", "owner_required": False},
    "send_notification": {"queue": "default", "owner_required": False},
    "generate_report": {"queue": "reports", "owner_required": True},
}


async def test_get_kinds_lists_every_declared_kind_with_its_schema(client: AsyncClient) -> None:
    items = {item["name"]: item for item in (await client.get("/kinds")).json()["items"]}
    assert set(items) == {*V1_KINDS, "webhook"}
    for name, expected in V1_KINDS.items():
        item = items[name]
        assert item == IsPartialDict(
            name=name,
            description=IsStr(min_length=1),
            schedule=None,
            max_tries=5,
            timeout_s=None,
            internal=False,
            **expected,
        )
        assert item["input_schema"]["type"] == "object"
    # Queued by the service as a job ends, never through POST /jobs.
    assert items["webhook"] == IsPartialDict(internal=True, max_tries=20)
    assert items["send_notification"]["input_schema"]["required"] == ["email"]
    assert items["run_sleep_task"]["input_schema"]["properties"]["type"] == IsPartialDict(minimum=0, maximum=3)


async def test_post_jobs_runs_each_kind(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings, arq_pool: ArqRedis
) -> None:
    alice = auth(settings, "alice")
    bodies = [
        ({"name": "run_sleep_task", "args": {"type": 0}}, {}),
        ({"name": "send_notification", "args": {"email": "ada@example.com", "query": "q1"}}, {}),
        ({"name": "generate_report", "args": {"rows": 5}}, alice),
        ({"name": "generate_report"}, alice),  # every argument has a default: args may be left out
    ]
    ids = []
    for body, headers in bodies:
        response = await client.post("/jobs", json=body, headers=headers)
        assert response.status_code == 202, response.text
        job_id = response.json()["task_id"]
        assert response.headers["location"] == f"/jobs/{job_id}"
        ids.append(job_id)
    await worker().main()
    views = [(await client.get(f"/jobs/{job_id}", headers=alice)).json() for job_id in ids]
    assert [v["status"] for v in views] == ["SUCCESS"] * 4
    assert views[2] == IsPartialDict(name="generate_report", owner="alice", result={"rows": 5, "bytes": IsInt()})
    assert views[3]["result"]["rows"] == 1000
    assert (await client.get(f"/reports/{ids[2]}/download", headers=alice)).text.count("\n") == 6
    assert "found query: q1" in settings.notifications_log.read_text()


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"name": "no_such_kind", "args": {}}, ["body"]),
        ({"name": "send_notification", "args": {}}, ["body", "send_notification", "args", "email"]),
        (
            {"name": "send_notification", "args": {"email": "not-an-address"}},
            ["body", "send_notification", "args", "email"],
        ),
        ({"name": "run_sleep_task", "args": {"type": "1"}}, ["body", "run_sleep_task", "args", "type"]),
        ({"name": "run_sleep_task", "args": {"type": 9}}, ["body", "run_sleep_task", "args", "type"]),
        ({"name": "run_sleep_task", "args": {"type": 1, "extra": 1}}, ["body", "run_sleep_task", "args", "extra"]),
        ({"name": "run_sleep_task", "args": [1]}, ["body", "run_sleep_task", "args"]),
        ({"args": {"type": 1}}, ["body"]),
    ],
)
async def test_post_jobs_answers_422_with_the_model_s_errors_and_queues_nothing(
    client: AsyncClient, arq_pool: ArqRedis, body: dict[str, object], where: list[str]
) -> None:
    response = await client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][: len(where)] == where
    assert await arq_pool.zcard("arq:queue") == 0


async def test_a_kind_that_needs_an_owner_needs_a_token(client: AsyncClient, arq_pool: ArqRedis) -> None:
    response = await client.post("/jobs", json={"name": "generate_report", "args": {"rows": 1}})
    assert response.status_code == 401
    assert "generate_report" in response.json()["detail"]
    assert await arq_pool.zcard("arq:queue") == 0


async def test_the_openapi_document_shows_each_kind_s_schema(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    refs = {ref["$ref"].rsplit("/", 1)[1] for ref in body["oneOf"]}
    assert refs == {"RunSleepTaskJob", "SendNotificationJob", "GenerateReportJob"}
    assert set(body["discriminator"]["mapping"]) == set(V1_KINDS)
    schemas = spec["components"]["schemas"]
    assert schemas["SendNotificationJob"]["properties"]["args"] == {"$ref": "#/components/schemas/NotificationArgs"}
    assert "email" in schemas["NotificationArgs"]["properties"]


async def test_the_v1_routes_enqueue_the_same_kinds(
    client: AsyncClient, arq_pool: ArqRedis, settings: Settings
) -> None:
    via_v1 = [
        (await client.post("/tasks", json={"type": 1})).json()["task_id"],
        (await client.post("/send-notification/ada@example.com?q=x", json={"message": "hi"})).json()["task_id"],
        (await client.post("/reports", json={"rows": 3}, headers=auth(settings, "bob"))).json()["task_id"],
    ]
    via_jobs = [
        (await client.post("/jobs", json={"name": "run_sleep_task", "args": {"type": 1}})).json()["task_id"],
        (
            await client.post(
                "/jobs",
                json={"name": "send_notification", "args": {"email": "ada@example.com", "message": "hi", "query": "x"}},
            )
        ).json()["task_id"],
        (
            await client.post(
                "/jobs", json={"name": "generate_report", "args": {"rows": 3}}, headers=auth(settings, "bob")
            )
        ).json()["task_id"],
    ]

    async def definition(job_id: str) -> tuple[str, dict[str, object]]:
        raw = orjson.loads(await arq_pool.get(job_key_prefix + job_id))
        return raw["f"], raw["k"]

    assert [await definition(i) for i in via_v1] == [await definition(i) for i in via_jobs]


# A kind in a module of its own ---------------------------------------------------------------------------------

COUNTING_KIND = """
from pydantic import BaseModel, Field

from service.kinds import JobContext, job_kind


class CountArgs(BaseModel):
    upto: int = Field(ge=1, le=100)


class CountResult(BaseModel):
    counted: int


@job_kind(args=CountArgs, result=CountResult, title="Count", description="Count to upto, one step at a time")
async def count_to(job: JobContext, args: CountArgs) -> CountResult:
    for n in range(1, args.upto + 1):
        await job.progress(n, args.upto)
        await job.sleep(1)
    return CountResult(counted=args.upto)
"""


@pytest.fixture
async def team_client(
    tmp_path: Path, settings: Settings, kind_module: Callable[[str, str], str], arq_pool: ArqRedis
) -> AsyncIterator[AsyncClient]:
    # Each of the kind's steps takes 0.1 s: the stream sees every one.
    team_settings = make_settings(
        tmp_path, settings.redis_url, job_kinds=[kind_module("team_kinds", COUNTING_KIND)], sleep_scale=0.1
    )
    app = create_app(team_settings)
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        client.team_settings = team_settings  # type: ignore[attr-defined]
        yield client


async def test_a_kind_added_in_its_own_module_is_seen_everywhere(
    team_client: AsyncClient, worker: Callable[..., Worker], arq_pool: ArqRedis
) -> None:
    team_settings: Settings = team_client.team_settings  # type: ignore[attr-defined]
    kinds = {item["name"]: item for item in (await team_client.get("/kinds")).json()["items"]}
    assert kinds["count_to"] == IsPartialDict(title="Count", queue="default", owner_required=False)
    assert kinds["count_to"]["result_schema"]["properties"] == {"counted": {"title": "Counted", "type": "integer"}}
    assert (await team_client.post("/jobs", json={"name": "count_to", "args": {"upto": 0}})).status_code == 422

    job_id = (await team_client.post("/jobs", json={"name": "count_to", "args": {"upto": 3}})).json()["task_id"]
    seen: list[dict[str, object]] = []

    async def follow() -> None:
        async with team_client.stream("GET", f"/jobs/{job_id}/events") as response:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    seen.append(json.loads(line[5:]))

    async def subscribed() -> bool:
        channels: list[tuple[bytes, int]] = await arq_pool.pubsub_numsub(keys.job_events(job_id))
        return channels[0][1] == 1

    # httpx's in-process transport hands the body over once the stream has ended: collect it, then look.
    stream = asyncio.create_task(follow())
    await run_until(subscribed, "the stream's subscription")
    running = asyncio.create_task(worker(burst=False, settings=team_settings).main())
    await asyncio.wait_for(stream, 20)  # the stream ends by itself after SUCCESS; the bound is a hang guard
    running.cancel()
    assert seen[-1] == IsPartialDict(status="SUCCESS", name="count_to", result={"counted": 3})
    assert {"current": 2, "total": 3} in [view["progress"] for view in seen]

    admin = auth(team_settings, "root", admin=True)
    dashboard = (await team_client.get("/dashboard/data", headers=admin)).json()
    assert IsPartialDict(name="count_to", title="Count", queue="default", schedule=None) in dashboard["kinds"]
    metrics = (await team_client.get("/metrics")).text
    assert 'arqjobs_jobs_enqueued_total{job="count_to"} 1.0' in metrics
    assert 'arqjobs_jobs_enqueued_total{job="run_sleep_task"} 0.0' in metrics  # every kind labelled from the start
