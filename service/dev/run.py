"""`make run`: a private Valkey server (unless REDIS_URL is set), one arq worker and the web app, until Ctrl-C."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from service.auth import create_token
from service.core import signin
from service.core.connections import sync_redis
from service.dev.server import ValkeyServer, port_in_use
from service.settings import DEV_REDIS_PORT, Settings, get_settings

logger = logging.getLogger(__name__)

WEB_HOST = os.environ.get("HOST", "127.0.0.1")
WEB_PORT = int(os.environ.get("PORT", "8000"))
# Only to run two `make run`s side by side (the test suite does); a worker started by hand then needs REDIS_URL.
VALKEY_PORT = int(os.environ.get("VALKEY_PORT", str(DEV_REDIS_PORT)))
READY_TIMEOUT_S = 60.0
# Ctrl-C should not keep a newcomer waiting: running jobs get 5 s, then are requeued for the next `make run`.
DEV_SHUTDOWN_GRACE_S = "5"
STOP_GRACE_S = 30.0


def _spawn(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Own session each: Ctrl-C reaches only this runner, which then stops web, worker and server in order.
    return subprocess.Popen(cmd, env=env, start_new_session=True)


def _wait_for_web(url: str, children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise RuntimeError("a process exited during start-up; see its output above")
        try:
            with urllib.request.urlopen(url + "health", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"the web app did not answer on {url} within {READY_TIMEOUT_S:.0f} s")


def _stop(child: subprocess.Popen[bytes], name: str, grace_s: float) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(grace_s + STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop in time; killing it", file=sys.stderr)
        child.kill()
        child.wait()


def signin_link(settings: Settings, user_id: str, *, admin: bool) -> str:
    """The fragment of a one-time sign-in link (`service.core.signin`) for `user_id`."""
    client = sync_redis(settings)
    try:
        return "signin=" + signin.create_code(client, create_token(user_id, settings.secret_key, admin=admin))
    finally:
        client.close()


def main() -> int:
    settings = get_settings()
    env = dict(os.environ)
    env.setdefault("SHUTDOWN_GRACE_S", DEV_SHUTDOWN_GRACE_S)
    server: ValkeyServer | None = None
    if "REDIS_URL" not in os.environ:
        if port_in_use(VALKEY_PORT):
            print(f"port {VALKEY_PORT} is taken: is another `make run` going? Or set REDIS_URL.", file=sys.stderr)
            return 1
        server = ValkeyServer(
            VALKEY_PORT, Path(settings.data_dir).resolve() / "valkey", persistent=True, own_session=True
        )
        server.start()
        env["REDIS_URL"] = server.url
        print(f"valkey-server on {server.url}, append-only file in {server.directory}", flush=True)

    worker = _spawn([sys.executable, "-m", "arq", "worker_settings.WorkerSettings"], env)
    web = _spawn(
        [sys.executable, "-m", "uvicorn", "service.main:app", "--host", WEB_HOST, "--port", str(WEB_PORT)], env
    )
    children = {"web": web, "worker": worker}
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    code = 0
    try:
        url = f"http://{WEB_HOST}:{WEB_PORT}/"
        _wait_for_web(url, list(children.values()))
        print(f"\n  Ready: open {url}  (API docs: {url}docs)  -  Ctrl-C stops everything.", flush=True)
        print(f"  Demo tokens - user 'demo': {create_token('demo', settings.secret_key)}", flush=True)
        print(f"                admin 'ops': {create_token('ops', settings.secret_key, admin=True)}", flush=True)
        link = signin_link(settings.model_copy(update={"redis_url": env["REDIS_URL"]}), "ops", admin=True)
        print(
            f"  Dashboard, signed in as 'ops' (this link works once, for 10 min): {url}dashboard#{link}\n", flush=True
        )
        while not stop.wait(0.5):
            exited = [name for name, child in children.items() if child.poll() is not None]
            if exited:
                print(f"{', '.join(exited)} exited; stopping the rest", file=sys.stderr)
                code = 1
                break
    except RuntimeError as e:
        print(f"make run: {e}", file=sys.stderr)
        code = 1
    finally:
        for name, child in children.items():
            _stop(child, name, float(env["SHUTDOWN_GRACE_S"]))
        if server is not None:
            server.stop()
    return code
