"""Where the time goes: py-spy samples the worker while it drains queued jobs, or the web app under wrk.

    .venv/bin/python -m bench.profile worker [N]      # N instant jobs queued, then one worker drains them
    .venv/bin/python -m bench.profile status [SECONDS] # GET /tasks/{id} under wrk, 20 connections

py-spy (a dev dependency) needs ptrace rights: root, or CAP_SYS_PTRACE in a container. It prints the functions with
the most samples, by own time and by time including callees; the raw stacks stay in the temp dir for a flame graph
(`flamegraph.pl` or speedscope.app).
"""

import asyncio
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from arq.connections import RedisSettings, create_pool

from bench.common import ROOT, bench_env, pid_of, private_server, process, web
from service.core.enqueue import enqueue
from service.core.serialization import job_deserializer, job_serializer

TOP = 25


def summarize(raw: Path) -> str:
    """Own and inclusive sample counts per function from py-spy's collapsed stacks ("a;b;c 12" per line)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():  # a frame name with a line break in it (frozen importlib's)
            continue
        count = int(count_text)
        frames = [frame.split(" (")[0] + " (" + frame.split(" (")[-1] for frame in stack.split(";")[1:]]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples"]
    for title, counter in (("own time", own), ("including callees", inclusive)):
        lines.append(f"\n-- {title} --")
        lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(TOP)]
    return "\n".join(lines)


def py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args = [binary, "record", "--pid", str(pid), "--rate", "500", "--format", "raw", "--output", str(out)]
    return subprocess.Popen([*args, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def profile_worker(n: int, tmp: Path) -> Path:
    with private_server(tmp / "valkey") as server:
        env = bench_env(server.url, tmp / "data")
        redis = await create_pool(
            RedisSettings.from_dsn(server.url), job_serializer=job_serializer, job_deserializer=job_deserializer
        )
        for _ in range(n):
            await enqueue(redis, "run_sleep_task", {"type": 0}, record_ttl_s=600)
        raw = tmp / "worker.txt"
        with process(["-m", "arq", "bench.ours.OURS"], env, tmp / "worker.log") as worker:
            spy = py_spy(worker.pid, raw)
            started = time.perf_counter()
            while await redis.zcount("arq:queue", "-inf", time.time() * 1000):
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        await redis.aclose()
    print(f"{n} jobs drained in {elapsed:.2f} s ({n / elapsed:.0f} jobs/s, worker start-up and profiling included)")
    return raw


def profile_status(seconds: int, tmp: Path) -> Path:
    with private_server(tmp / "valkey") as server, web(bench_env(server.url, tmp / "data"), tmp / "web.log") as url:
        task_id = httpx.post(url + "/tasks", json={"type": 0}).json()["task_id"]
        raw = tmp / "web.txt"
        spy = py_spy(pid_of("service.main:app"), raw)
        args = ["wrk", "-t2", "-c20", f"-d{seconds}s", f"{url}/tasks/{task_id}"]
        out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    print(next(line for line in out.splitlines() if line.startswith("Requests/sec")), "(while profiled)")
    return raw


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "worker"
    tmp = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    if what == "worker":
        raw = asyncio.run(profile_worker(int(sys.argv[2]) if len(sys.argv) > 2 else 5000, tmp))
    elif what == "status":
        raw = profile_status(int(sys.argv[2]) if len(sys.argv) > 2 else 8, tmp)
    else:
        sys.exit(__doc__)
    print(summarize(raw))
    print(f"\nraw stacks: {raw}  (cwd {ROOT})")


if __name__ == "__main__":
    main()
