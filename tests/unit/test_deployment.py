"""compose.yaml, the Dockerfile and the README agree with the contract's commands (no Docker engine here)."""

import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WEB = "uvicorn service.main:app --host 0.0.0.0 --port 8000"
WEB_OPTIONS = " --timeout-graceful-shutdown 10"
WORKER = "arq worker_settings.WorkerSettings"
CHECK = "arq --check worker_settings.WorkerSettings"
LOCAL_CHECK = "python -m service check"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def command(service: dict[str, Any]) -> str:
    return shlex.join(service["command"])


def test_compose_runs_the_contracts_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "web", "worker", "report-worker"}
    assert command(services["web"]) == WEB + WEB_OPTIONS
    for name in ("worker", "report-worker"):
        assert command(services[name]) == WORKER
        assert shlex.join(services[name]["healthcheck"]["test"][1:]) == LOCAL_CHECK
    # A dedicated report worker beside the general ones, which leave reports to it.
    assert services["worker"]["environment"]["WORKER_QUEUES"] == "default"
    assert services["report-worker"]["environment"]["WORKER_QUEUES"] == "reports,default"
    # Scalable with --scale worker=3: no fixed name or host port on the worker.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]


def test_compose_persists_redis_and_wires_settings(compose: dict[str, Any]) -> None:
    services = compose["services"]
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert services["redis"]["volumes"][0].endswith(":/data")
    for name in ("web", "worker", "report-worker"):
        env = services[name]["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")  # refuses to start without a real key
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "healthcheck" in services[name]
    # Reports written by workers are served by the web app: same volume.
    assert services["web"]["volumes"] == services["worker"]["volumes"]
    assert services["worker"]["stop_grace_period"]


def test_readme_documents_the_same_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    opening = "\n".join(readme.splitlines()[:40])
    assert "make run" in opening and "make test" in opening
    for cmd in (WORKER, CHECK, LOCAL_CHECK, "uvicorn service.main:app", "docker compose up --build --scale worker=3"):
        assert cmd in readme, cmd


def test_ci_runs_the_readmes_test_command() -> None:
    assert "make lint typecheck test" in (ROOT / ".ci" / "run").read_text()


def test_the_image_installs_the_package_with_its_templates() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY service ./service" in dockerfile and "pip install '.[otel]'" in dockerfile
    assert LOCAL_CHECK.split(" ", 1)[1].replace(" ", '", "') in dockerfile  # the worker probe, documented
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.11"
