"""Reports: bearer tokens, ownership, progress, atomic files, downloads, a million rows, and cleanup."""

import asyncio
import csv
import io
from collections.abc import Callable

import pytest
from arq.connections import ArqRedis
from arq.worker import Worker
from dirty_equals import IsStr
from httpx import AsyncClient

from service.kinds.reports import HEADER, remove_expired_reports, report_path
from service.settings import Settings
from tests.conftest import run_until
from tests.integration.helpers import auth


@pytest.fixture
def alice(settings: Settings) -> dict[str, str]:
    return auth(settings, "alice")


async def create(client: AsyncClient, headers: dict[str, str], rows: int = 100) -> str:
    response = await client.post("/reports", json={"rows": rows}, headers=headers)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    assert response.headers["location"] == f"/reports/{task_id}"
    return task_id


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic YWxpY2U6cHc="}],
)
async def test_reports_need_a_valid_token(client: AsyncClient, headers: dict[str, str]) -> None:
    for method, path in [("POST", "/reports"), ("GET", "/reports/x"), ("GET", "/reports/x/download")]:
        response = await client.request(method, path, json={"rows": 1} if method == "POST" else None, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json() == {"detail": IsStr()}


async def test_expired_and_forged_tokens_are_401(client: AsyncClient, settings: Settings) -> None:
    expired = auth(settings, "alice", ttl_s=-10)
    forged = auth(settings.model_copy(update={"secret_key": "x" * 48}), "alice")
    for headers in (expired, forged):
        response = await client.post("/reports", json={"rows": 1}, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_a_user_id_in_the_query_is_not_trusted(
    client: AsyncClient, alice: dict[str, str], settings: Settings
) -> None:
    task_id = await create(client, alice)
    response = await client.get(f"/reports/{task_id}", params={"user_id": "alice"}, headers=auth(settings, "mallory"))
    assert response.status_code == 403


async def test_request_follow_and_download(
    client: AsyncClient, alice: dict[str, str], worker: Callable[..., Worker], settings: Settings
) -> None:
    task_id = await create(client, alice, rows=250)
    pending = await client.get(f"/reports/{task_id}", headers=alice)
    assert pending.json() == {"task_id": task_id, "status": "PENDING", "progress": None, "download_url": None}
    too_early = await client.get(f"/reports/{task_id}/download", headers=alice)
    assert too_early.status_code == 409 and too_early.json() == {"detail": IsStr()}

    run = asyncio.create_task(worker().main())
    seen: list[tuple[int, int]] = []
    final = report_path(settings, "alice", task_id)

    async def finished() -> bool:
        body = (await client.get(f"/reports/{task_id}", headers=alice)).json()
        if body["progress"] and body["status"] == "STARTED":
            seen.append((body["progress"]["current"], body["progress"]["total"]))
            if body["progress"]["current"] < body["progress"]["total"]:
                assert not final.exists()  # never visible half-written
        return body["status"] == "SUCCESS"

    await run_until(finished, "the report")
    await run
    assert any(0 < current < 250 for current, _ in seen), seen  # progress moved through the steps
    assert seen == sorted(seen)
    done = (await client.get(f"/reports/{task_id}", headers=alice)).json()
    assert done == {
        "task_id": task_id,
        "status": "SUCCESS",
        "progress": {"current": 250, "total": 250},
        "download_url": f"/reports/{task_id}/download",
    }

    download = await client.get(done["download_url"], headers=alice)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == f'attachment; filename="report-{task_id}.csv"'
    rows = list(csv.reader(io.StringIO(download.text)))
    assert tuple(rows[0]) == HEADER and len(rows) == 251
    assert rows[1][:2] == ["1", "alice"]


async def test_other_users_get_403_and_admins_get_in(
    client: AsyncClient, alice: dict[str, str], worker: Callable[..., Worker], settings: Settings
) -> None:
    task_id = await create(client, alice, rows=5)
    await worker().main()
    mallory, admin = auth(settings, "mallory"), auth(settings, "root", admin=True)
    for path in (f"/reports/{task_id}", f"/reports/{task_id}/download", f"/jobs/{task_id}"):
        response = await client.get(path, headers=mallory)
        assert response.status_code == 403, path
        assert response.json() == {"detail": IsStr(), "status": "PROTECTED"}
        assert (await client.get(path, headers=admin)).status_code == 200
        assert (await client.get(path, headers=alice)).status_code == 200
    assert (await client.get(f"/jobs/{task_id}")).status_code == 403  # anonymous
    assert (await client.get(f"/jobs/{task_id}", headers=alice)).json()["owner"] == "alice"


async def test_unknown_reports_and_other_job_kinds_are_404(client: AsyncClient, alice: dict[str, str]) -> None:
    task_id = (await client.post("/tasks", json={"type": 0})).json()["task_id"]
    for path in ("/reports/0123456789abcdef0123456789abcdef", f"/reports/{task_id}", f"/reports/{task_id}/download"):
        assert (await client.get(path, headers=alice)).status_code == 404, path


@pytest.mark.parametrize(
    "body",
    [{"rows": 0}, {"rows": 1_000_001}, {"rows": "10"}, {"rows": 1.5}, {"rows": None}, {"rows": True}, {"cols": 1}],
)
async def test_bad_report_bodies_are_422(client: AsyncClient, alice: dict[str, str], body: dict[str, object]) -> None:
    assert (await client.post("/reports", json=body, headers=alice)).status_code == 422


async def test_formula_cells_are_neutralised(
    client: AsyncClient, worker: Callable[..., Worker], settings: Settings
) -> None:
    user = auth(settings, "=HYPERLINK")
    task_id = await create(client, user, rows=2)
    await worker().main()
    rows = list(csv.reader(io.StringIO((await client.get(f"/reports/{task_id}/download", headers=user)).text)))
    assert rows[1][1] == "'=HYPERLINK"


async def test_a_million_rows(client: AsyncClient, alice: dict[str, str], worker: Callable[..., Worker]) -> None:
    task_id = await create(client, alice, rows=1_000_000)
    await worker().main()
    lines = 0
    async with client.stream("GET", f"/reports/{task_id}/download", headers=alice) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_bytes():
            lines += chunk.count(b"\n")
    assert lines == 1_000_001


async def test_expired_reports_are_never_served_and_are_removed(
    client: AsyncClient, alice: dict[str, str], worker: Callable[..., Worker], settings: Settings, arq_pool: ArqRedis
) -> None:
    expired, kept = await create(client, alice, rows=3), await create(client, alice, rows=3)
    await worker().main()
    stale_tmp = report_path(settings, "alice", "0" * 32).with_name(f".{'0' * 32}.1.tmp")
    stale_tmp.write_text("half")
    await arq_pool.delete(f"arq:result:{expired}")  # what RESULT_TTL does
    assert report_path(settings, "alice", expired).exists()
    assert (await client.get(f"/reports/{expired}/download", headers=alice)).status_code == 404

    assert await remove_expired_reports(arq_pool, settings) == 2
    assert not report_path(settings, "alice", expired).exists() and not stale_tmp.exists()
    assert (await client.get(f"/reports/{kept}/download", headers=alice)).status_code == 200
    assert await remove_expired_reports(arq_pool, settings) == 0
