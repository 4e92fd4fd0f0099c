"""The operator's command line, `python -m service <noun> <verb>`: tables for people, JSON for scripts, and the
contract's exit codes (0 done, 1 not found or not allowed, 2 bad usage; 3 Redis did not answer)."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.cli import main, relative
from service.client import Jobs
from service.dev.server import free_port
from service.engine import heartbeat
from service.settings import Settings, get_settings
from service.testing import run_due_jobs


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The command line reads the workers' settings from the environment, as an operator's shell has them."""
    for name, value in {
        "REDIS_URL": settings.redis_url,
        "DATA_DIR": str(settings.data_dir),
        "SECRET_KEY": settings.secret_key,
        "SLEEP_SCALE": "0",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def as_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    status, out, _ = run(capsys, *argv, "--json")
    assert status == 0
    return orjson.loads(out)


def seed(settings: Settings) -> dict[str, str]:
    """A success, a failure and a job scheduled for tomorrow."""

    async def go() -> dict[str, str]:
        async with Jobs(settings=settings) as jobs:
            ok = await jobs.enqueue("run_sleep_task", {"type": 0}, owner="ada")
            bounced = await jobs.enqueue("send_notification", {"email": "bounce@example.com"})
            later = await jobs.enqueue("run_sleep_task", {"type": 1}, delay_s=86400)
            await run_due_jobs(settings)
            return {"ok": ok.id, "failed": bounced.id, "later": later.id}

    return asyncio.run(go())


def test_jobs_are_listed_and_shown_as_tables_and_json(
    env: Settings, arq_pool: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed(env)
    status, out, _ = run(capsys, "jobs", "list")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "kind", "status", "queue", "owner", "enqueued", "try", "error"]
    assert all(job_id in out for job_id in ids.values())
    assert "\x1b[" not in out  # no colour when not on a terminal
    listed = as_json(capsys, "jobs", "list")
    assert [item["id"] for item in listed["items"]] == [ids["later"], ids["failed"], ids["ok"]]
    failed = as_json(capsys, "jobs", "list", "--status", "FAILURE")["items"]
    assert [item["id"] for item in failed] == [ids["failed"]]
    assert [i["id"] for i in as_json(capsys, "jobs", "list", "--kind", "send_notification")["items"]] == [ids["failed"]]
    assert [i["id"] for i in as_json(capsys, "jobs", "list", "--owner", "ada")["items"]] == [ids["ok"]]
    page = as_json(capsys, "jobs", "list", "--limit", "2")
    assert len(page["items"]) == 2
    assert [i["id"] for i in as_json(capsys, "jobs", "list", "--cursor", page["next"])["items"]] == [ids["ok"]]

    status, out, _ = run(capsys, "jobs", "show", ids["failed"])
    assert status == 0
    assert "550 mailbox unavailable" in out
    assert "bounce@example.com" in out  # the operator sees the arguments
    shown = as_json(capsys, "jobs", "show", ids["failed"])
    assert shown["status"] == "FAILURE"
    assert shown["args"]["email"] == "bounce@example.com"
    assert "Traceback" in shown["error"]["traceback"]


def test_retry_abort_and_their_exit_codes(env: Settings, arq_pool: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ids = seed(env)
    status, out, _ = run(capsys, "jobs", "retry", ids["failed"])
    assert status == 0
    new_id = out.strip()
    assert as_json(capsys, "jobs", "show", new_id)["status"] == "PENDING"
    status, _, err = run(capsys, "jobs", "retry", ids["ok"])
    assert (status, err.count("\n")) == (1, 1)
    assert "SUCCESS" in err
    assert run(capsys, "jobs", "show", "f" * 32)[0] == 1
    assert run(capsys, "jobs", "abort", ids["later"])[1].strip() == "REVOKED"
    assert run(capsys, "jobs", "abort", ids["later"])[0] == 1
    assert as_json(capsys, "jobs", "retry-failed") == {"retried": 0}  # the failure was run again already
    assert run(capsys, "jobs", "retry-failed", "--kind", "no_such_kind")[0] == 1


def test_queues_kinds_and_workers(env: Settings, arq_pool: Any, capsys: pytest.CaptureFixture[str]) -> None:
    seed(env)
    queues = {q["name"]: q for q in as_json(capsys, "queues", "list")["items"]}
    assert set(queues) == {"default", "reports"}
    default = queues["default"]
    assert (default["depth"], default["waiting"], default["running"], default["scheduled"], default["workers"]) == (
        0, 0, 0, 1, 0,
    )  # fmt: skip
    status, out, _ = run(capsys, "queues", "list")
    assert status == 0
    assert out.splitlines()[0].split() == ["queue", "waiting", "running", "scheduled", "oldest", "waiting", "workers"]

    kinds = [k["name"] for k in as_json(capsys, "kinds", "list")["items"]]
    assert kinds[:3] == ["run_sleep_task", "send_notification", "generate_report"]
    assert "Sleep type x 10 s" in run(capsys, "kinds", "list")[1]

    assert as_json(capsys, "workers", "list") == {"items": []}
    assert "no live worker" in run(capsys, "workers", "list")[1]
    asyncio.run(_beat(env))
    (worker,) = as_json(capsys, "workers", "list")["items"]
    assert (worker["id"], worker["queues"]) == ("w-1", ["default", "reports"])
    assert "w-1" in run(capsys, "workers", "list")[1]
    queues = {q["name"]: q for q in as_json(capsys, "queues", "list")["items"]}
    assert queues["reports"]["workers"] == 1


async def _beat(settings: Settings) -> None:
    async with Jobs(settings=settings) as jobs:
        await heartbeat.beat(jobs.redis, "w-1", 0, {"running": 0, "done": 0}, ["default", "reports"])


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["jobs"],
        ["jobs", "lst"],
        ["jobs", "list", "--limit", "0"],
        ["jobs", "list", "--limit", "x"],
        ["jobs", "list", "--status", "DONE"],
        ["jobs", "show"],
        ["queues", "list", "extra"],
        ["nothing"],
    ],
)
def test_bad_usage_is_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert err.startswith("python -m service")


@pytest.mark.parametrize(
    "argv", [[], ["jobs"], ["jobs", "list"], ["jobs", "retry-failed"], ["queues"], ["queues", "list"], ["workers"]]
)
def test_help_at_every_level(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m service")


def test_redis_unreachable_is_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    try:
        status, _, err = run(capsys, "queues", "list")
    finally:
        get_settings.cache_clear()
    assert status == 3
    assert err.startswith("Redis did not answer")


def test_relative_times() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert relative(now - timedelta(seconds=12), now) == "12 s ago"
    assert relative(now + timedelta(minutes=3, seconds=5), now) == "in 3 min"
    assert relative(now - timedelta(hours=2), now) == "2 h ago"
    assert relative(now - timedelta(days=5), now) == "5 d ago"
    assert relative(None) == "-"
