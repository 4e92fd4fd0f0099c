"""The two worker checks with real processes: `arq --check` through a rolling restart, and this host's
`python -m service check` for a worker that stops, is frozen (SIGSTOP, as a blocked event loop) and comes back."""

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import ROOT, Proc, wait_until

pytestmark = pytest.mark.e2e

ARQ_CHECK = [sys.executable, "-m", "arq", "--check", "worker_settings.WorkerSettings"]
LOCAL_CHECK = [sys.executable, "-m", "service", "check"]


def run(command: list[str], env: dict[str, str]) -> int:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=False, timeout=30).returncode


def test_stopping_one_worker_of_three_never_fails_arq_check(
    start_worker: Callable[[], Proc], env: dict[str, str], report: Callable[[str], None]
) -> None:
    workers = [start_worker() for _ in range(3)]
    samples: list[int] = []
    stopped = threading.Event()

    def sample() -> None:
        # Every 0.4 s, until one health-check interval (5 s) and its key's extra second have passed since the stop.
        deadline: float | None = None
        while deadline is None or time.monotonic() < deadline:
            samples.append(run(ARQ_CHECK, env))
            time.sleep(0.4)
            if deadline is None and stopped.is_set():
                deadline = time.monotonic() + 7

    sampler = threading.Thread(target=sample)
    sampler.start()
    assert workers[0].stop() == 0
    stopped.set()
    sampler.join(60)
    assert not sampler.is_alive()
    report(f"arq --check sampled {len(samples)} times around a SIGTERM of one worker of three: all {set(samples)}")
    assert samples and set(samples) == {0}
    for worker in workers[1:]:
        assert worker.stop() == 0


def test_the_local_check_follows_this_host_s_worker(
    start_worker: Callable[[], Proc], env: dict[str, str], report: Callable[[str], None]
) -> None:
    assert run(LOCAL_CHECK, env) == 1  # no worker yet
    worker = start_worker()
    wait_until(lambda: run(LOCAL_CHECK, env) == 0, "the check to pass for a running worker")

    # Frozen: the process lives, but its event loop answers nothing (as when a job blocks it).
    worker.process.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    wait_until(lambda: run(LOCAL_CHECK, env) != 0, "the check to fail for a frozen worker", timeout=20)
    report(f"frozen worker: the check failed {time.monotonic() - frozen:.1f} s after SIGSTOP (contract: about 15 s)")
    worker.process.send_signal(signal.SIGCONT)
    thawed = time.monotonic()
    wait_until(lambda: run(LOCAL_CHECK, env) == 0, "the check to pass again once the loop answers", timeout=20)
    report(f"thawed worker: the check passed {time.monotonic() - thawed:.1f} s after SIGCONT")

    assert worker.stop() == 0  # SIGTERM: it removes its mark as it stops
    assert run(LOCAL_CHECK, env) == 1
