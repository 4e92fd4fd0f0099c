"""The README's "Testing your kinds" example, copied out of the README into a project of its own and run with
`pytest -p service.testing`, as a team would in its repository: no conftest of this repository, no Redis of its
own. If the README's example stops working, this fails."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e

# `<!-- example: path -->` on the line before a fenced block names the file the block is.
EXAMPLE = re.compile(r"<!-- example: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)```", re.DOTALL)
# Variables of this repository's own runs that a team's shell would not have.
NOT_THEIRS = ("REDIS_URL", "REDIS_SENTINELS", "JOB_KINDS", "DATA_DIR", "SLEEP_SCALE", "PYTEST_ADDOPTS", "PYTHONPATH")


def test_the_readme_example_passes_in_a_project_of_its_own(tmp_path: Path) -> None:
    files = {match["path"]: match["body"] for match in EXAMPLE.finditer((ROOT / "README.md").read_text())}
    assert set(files) == {"pyproject.toml", "myteam/jobs.py", "tests/test_jobs.py"}
    for path, body in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(body)
    (tmp_path / "myteam" / "__init__.py").write_text("")
    env = {name: value for name, value in os.environ.items() if name not in NOT_THEIRS}
    env.pop("PYTEST_XDIST_WORKER", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "service.testing", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
