"""A report through real processes: the token command, uvicorn, and an `arq` worker."""

import csv
import io
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import ROOT, Proc, wait_until

pytestmark = pytest.mark.e2e


def token(env: dict[str, str], user_id: str, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "service", "token", user_id, *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 1  # the token alone on stdout
    return lines[0]


def test_token_command_refuses_bad_user_ids(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "token", "../etc"], cwd=ROOT, env=env, capture_output=True, check=False
    )
    assert done.returncode == 2 and done.stdout == b""


def test_report_end_to_end(start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str]) -> None:
    url = start_web()
    start_worker()
    alice = {"Authorization": f"Bearer {token(env, 'alice')}"}
    admin = {"Authorization": f"Bearer {token(env, 'ops', '--admin')}"}
    with httpx.Client(base_url=url) as client:
        created = client.post("/reports", json={"rows": 2000}, headers=alice)
        assert created.status_code == 202
        location = created.headers["location"]
        wait_until(lambda: client.get(location, headers=alice).json()["status"] == "SUCCESS", "the report")
        download = client.get(f"{location}/download", headers=admin)
        assert download.status_code == 200
        assert len(list(csv.reader(io.StringIO(download.text)))) == 2001
        assert client.get(location, headers={"Authorization": f"Bearer {token(env, 'bob')}"}).status_code == 403
