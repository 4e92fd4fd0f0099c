"""`make bench`: this service, the Celery tutorial stack and bare arq, measured side by side in one run.

    .venv/bin/python -m bench.run [--quick]

Everything runs on one private valkey-server (never 6379), on 127.0.0.1, bounded in time. HTTP load comes from
wrk (Debian's package). Bare arq runs twice over: with its defaults, and with our worker's poll_delay and max_jobs
(the drain rate this service must not fall below). Each figure is the median of 3 runs (1 with --quick; bare arq
with its defaults is measured once); ratios are against the Celery stack measured in the same run. Ours runs once more
with OpenTelemetry on (OTEL_EXPORTER_OTLP_ENDPOINT, exporting to a sink that drops the spans): the last two columns
give what tracing costs. The table is printed and written, with the date and machine, to bench/RESULTS.md.
"""

import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from arq.connections import ArqRedis, RedisSettings, create_pool

from bench.common import ROOT, bench_env, pct, pid_of, private_server, process, web, worker
from service.core.enqueue import enqueue
from service.core.serialization import job_deserializer, job_serializer

# A copy of the Celery tutorial stack users would pick instead (bench/peer/README.md): benched from a clean clone.
PEER = ROOT / "bench" / "peer"
PEER_VENV = ROOT / "bench" / ".peer-venv"
PEER_PY = str(PEER_VENV / "bin" / "python")
SCALE = 0.005  # SLEEP_SCALE: a type-0 task is instant, a type-1 task sleeps 50 ms
WRK_LUA = 'wrk.method = "POST"\nwrk.body = \'{"type": 0}\'\nwrk.headers["Content-Type"] = "application/json"\n'


class Progress:
    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0

    def step(self, what: str) -> None:
        self.done += 1
        filled = int(30 * self.done / self.total)
        print(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {what:<60}",
            end="",
            file=sys.stderr,
            flush=True,
        )


def ensure_peer_venv() -> None:
    if not (PEER_VENV / "bin" / "celery").exists():
        print("creating the Celery peer's virtual environment (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([PEER_PY, "-m", "pip", "install", "-q", "-r", str(PEER / "requirements.txt")], check=True)


def wrk(url: str, seconds: int, post: bool, tmp: Path) -> float:
    script = tmp / "post.lua"
    script.write_text(WRK_LUA)
    args = ["wrk", "-t2", "-c20", f"-d{seconds}s", "--latency"] + (["-s", str(script)] if post else []) + [url]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))


def rss_mib(pid: int) -> float:
    """RSS of a process and its children (Celery's prefork pool), in MiB."""
    total = 0
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    for p in [pid, *map(int, children)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:
            continue
        total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    return total / 1024


async def post_to_success(url: str, n: int, sse: bool) -> list[float]:
    """POST an instant task, then watch for SUCCESS (polling every 5 ms, or through the SSE stream)."""
    times = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(n):
            started = time.perf_counter()
            task_id = (await client.post("/tasks", json={"type": 0})).json()["task_id"]
            if sse:
                async with client.stream("GET", f"/jobs/{task_id}/events") as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data: ") and json.loads(line[6:])["status"] == "SUCCESS":
                            break
            else:
                while (await client.get(f"/tasks/{task_id}")).json()["task_status"] != "SUCCESS":
                    await asyncio.sleep(0.005)
            times.append((time.perf_counter() - started) * 1000)
    return times


def peer_enqueue(env: dict[str, str], n: int, task_type: int) -> str:
    """Queue n tasks through Celery's own client; returns the last task's id."""
    code = f"from tasks import create_task\nfor _ in range({n}): t = create_task.delay({task_type})\nprint(t.id)"
    return subprocess.run(
        [PEER_PY, "-c", code], cwd=PEER, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


class Bench:
    def __init__(self, quick: bool, tmp: Path, redis_url: str) -> None:
        self.quick, self.tmp = quick, tmp
        self.runs = 1 if quick else 3
        self.wrk_s = 3 if quick else 8
        self.n_latency = 20 if quick else 50
        self.n_drain = 1000 if quick else 5000
        self.n_fifty = 300 if quick else 1000
        self.env = bench_env(redis_url, tmp / "data", SCALE)
        self.peer_env = {**self.env, "CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url}
        self.results: dict[str, dict[str, list[float]]] = {
            "ours": {},
            "peer": {},
            "arq": {},
            "arq_ours": {},
            "traced": {},
        }
        self.traced_env = self.env  # set by main() once the OTLP sink listens

    def add(self, stack: str, figure: str, value: float) -> None:
        self.results[stack].setdefault(figure, []).append(value)

    @contextmanager
    def ours(self, traced: bool = False) -> Iterator[tuple[str, int, int]]:
        env = self.traced_env if traced else self.env
        with (
            worker("bench.ours.OURS", env, self.tmp / "ours-worker.log") as w,
            web(env, self.tmp / "ours-web.log") as url,
        ):
            yield url, pid_of("service.main:app"), w.pid

    @contextmanager
    def traced(self) -> Iterator[tuple[str, int, int]]:
        with self.ours(traced=True) as running:
            yield running

    @contextmanager
    def peer(self) -> Iterator[tuple[str, int, int]]:
        with ExitStack() as stack:
            celery = stack.enter_context(
                process(
                    ["-m", "celery", "-A", "tasks", "worker", "--loglevel=warning"],
                    self.peer_env,
                    self.tmp / "peer-worker.log",
                    python=PEER_PY,
                    cwd=PEER,
                )
            )
            url = stack.enter_context(
                web(self.peer_env, self.tmp / "peer-web.log", app="app:app", python=PEER_PY, cwd=PEER)
            )
            task_id = httpx.post(f"{url}/tasks", json={"type": 0}).json()["task_id"]
            while httpx.get(f"{url}/tasks/{task_id}").json()["task_status"] != "SUCCESS":  # ready
                time.sleep(0.1)
            yield url, pid_of("uvicorn app:app"), celery.pid


async def settle(stack: str, redis: ArqRedis) -> None:
    """Wait until the worker has drained what wrk enqueued, so single jobs are not timed behind a backlog."""
    while await (redis.llen("celery") if stack == "peer" else redis.zcard("arq:queue")):
        await asyncio.sleep(0.05)


async def http_workloads(
    b: Bench, redis: ArqRedis, stack: str, url: str, pids: tuple[int, int], progress: Progress
) -> None:
    b.add(stack, "rss_idle_mib", rss_mib(pids[0]) + rss_mib(pids[1]))
    b.add(stack, "enqueue_rps", wrk(f"{url}/tasks", b.wrk_s, True, b.tmp))
    progress.step(f"{stack}: enqueue throughput")
    task_id = httpx.post(f"{url}/tasks", json={"type": 0}).json()["task_id"]
    await asyncio.sleep(0.5)
    b.add(stack, "status_rps", wrk(f"{url}/tasks/{task_id}", b.wrk_s, False, b.tmp))
    progress.step(f"{stack}: status reads")
    await settle(stack, redis)
    polled = await post_to_success(url, b.n_latency, sse=False)
    b.add(stack, "success_p50_ms", pct(polled, 50))
    b.add(stack, "success_p95_ms", pct(polled, 95))
    if stack in ("ours", "traced"):
        streamed = await post_to_success(url, b.n_latency, sse=True)
        b.add(stack, "success_sse_p50_ms", pct(streamed, 50))
    progress.step(f"{stack}: POST -> SUCCESS")
    b.add(stack, "rss_loaded_mib", rss_mib(pids[0]) + rss_mib(pids[1]))


WORKERS = {
    "ours": "bench.ours.OURS",
    "traced": "bench.ours.OURS",
    "arq": "bench.probes.ARQ_DEFAULTS",
    "arq_ours": "bench.probes.ARQ_OUR_SETTINGS",
}


async def drain_and_fifty(b: Bench, redis: ArqRedis, stack: str, progress: Progress) -> None:
    """Drain n instant jobs, then 1,000 jobs of 50 ms (concurrency 100: ours and bare arq at our settings)."""
    b.add(stack, "drain_jobs_s", await timed_drain(b, redis, stack, b.n_drain, 0))
    progress.step(f"{stack}: drain {b.n_drain} queued jobs")
    if stack == "traced":
        return
    b.add(stack, "fifty_ms_share", await timed_drain(b, redis, stack, b.n_fifty, 1) / 2000)
    if stack == "ours":  # concurrency 100 as one worker process per core, 50 jobs each
        b.add(stack, "fifty_ms_share_2p", await timed_drain(b, redis, stack, b.n_fifty, 1, processes=2) / 2000)
    progress.step(f"{stack}: {b.n_fifty} jobs of 50 ms")


async def timed_drain(b: Bench, redis: ArqRedis, stack: str, n: int, task_type: int, processes: int = 1) -> float:
    """Jobs/s of one worker process (or of `processes` of ours, sharing max_jobs) through n jobs queued before
    it starts.

    Timed from the first job off the queue (a worker is up) to the last result: neither the client's enqueue
    rate nor the workers' start-up counts, for any stack.
    """
    await redis.flushdb()
    if stack == "peer":
        last = peer_enqueue(b.peer_env, n, task_type)
        queued = partial(redis.llen, "celery")
        done = partial(_peer_done, redis, last)
        args, python, cwd = ["-m", "celery", "-A", "tasks", "worker", "--loglevel=warning"], PEER_PY, PEER
    else:
        for _ in range(n):
            if stack in ("ours", "traced"):
                await enqueue(redis, "run_sleep_task", {"type": task_type}, record_ttl_s=600)
            else:
                await redis.enqueue_job("sleep_probe", seconds=task_type * 10 * SCALE)
        queued = partial(redis.zcard, "arq:queue")  # arq takes a job off its queue when the job ends
        done = partial(_arq_done, redis)
        target = WORKERS[stack] if processes == 1 else f"bench.ours.OURS_SHARE_OF_{processes}"
        args, python, cwd = ["-m", "arq", target], sys.executable, ROOT
    with ExitStack() as stack_of_processes:
        for i in range(processes):
            log = b.tmp / f"drain-{i}.log"
            env = {"peer": b.peer_env, "traced": b.traced_env}.get(stack, b.env)
            stack_of_processes.enter_context(process(args, env, log, python=python, cwd=cwd))
        # Polled every 10 ms: tighter polling took a fifth of a core from the processes under test.
        while (left := await queued()) >= n:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        while await queued() or not await done():
            await asyncio.sleep(0.01)
        return left / (time.perf_counter() - started)  # the jobs left when timing began


async def _arq_done(redis: ArqRedis) -> bool:
    # Queue empty and nothing claimed: every job has its result.
    return not await redis.keys("arq:in-progress:*")


async def _peer_done(redis: ArqRedis, last_id: str) -> bool:
    raw = await redis.get(f"celery-task-meta-{last_id}")
    return raw is not None and json.loads(raw)["status"] == "SUCCESS"


FIGURES = [
    ("enqueue_rps", "HTTP enqueue, POST /tasks, 20 connections (req/s)", True),
    ("status_rps", "status reads, GET /tasks/{id}, 20 connections (req/s)", True),
    ("success_p50_ms", "instant job, POST to visible SUCCESS, p50 (ms, polling 5 ms)", False),
    ("success_p95_ms", "instant job, POST to visible SUCCESS, p95 (ms, polling 5 ms)", False),
    ("success_sse_p50_ms", "instant job, POST to SUCCESS through SSE, p50 (ms)", False),
    ("pickup_p50_ms", "pickup latency of an idle worker, enqueue acknowledged to job running, p50 (ms)", False),
    ("pickup_p95_ms", "the same, p95 (ms)", False),
    ("pickup_call_p50_ms", "the same from the enqueue call (adds the enqueue's own round trip), p50 (ms)", False),
    ("lateness_p50_ms", "a job scheduled for later: start minus its time, idle worker, p50 (ms)", False),
    ("lateness_p95_ms", "the same, p95 (ms)", False),
    ("drain_jobs_s", "drain of queued no-op jobs, one worker process (jobs/s)", True),
    ("fifty_ms_share", "50 ms jobs at concurrency 100, share of the 2,000 jobs/s ceiling (one worker process)", True),
    ("fifty_ms_share_2p", "the same, concurrency 100 as 2 worker processes x 50 (one per core)", True),
    ("commands_per_job", "Redis commands per job", False),
    ("rss_idle_mib", "RSS of web + worker, idle (MiB)", False),
    ("rss_loaded_mib", "RSS of web + worker, after load (MiB)", False),
]


def table(b: Bench) -> str:
    lines = [
        "| figure | ours | Celery tutorial | bare arq, its defaults | bare arq, our poll_delay and max_jobs"
        + " | ours / Celery | ours, traced (OTLP) | traced / ours |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label, _ in FIGURES:
        cells = []
        medians = {}
        for stack in ("ours", "peer", "arq", "arq_ours", "traced"):
            values = b.results[stack].get(key)
            medians[stack] = statistics.median(values) if values else None
        cells = ["n/a" if medians[s] is None else f"{medians[s]:,.2f}" for s in ("ours", "peer", "arq", "arq_ours")]
        ratio = f"{medians['ours'] / medians['peer']:.2f}x" if medians["ours"] and medians["peer"] else "n/a"
        traced = "n/a" if medians["traced"] is None else f"{medians['traced']:,.2f}"
        cost = f"{medians['traced'] / medians['ours']:.2f}x" if medians["ours"] and medians["traced"] else "n/a"
        lines.append(f"| {label} | {' | '.join(cells)} | {ratio} | {traced} | {cost} |")
    return "\n".join(lines)


async def main(quick: bool) -> None:
    if not shutil.which("wrk"):
        sys.exit("make bench needs wrk: apt-get install wrk")
    ensure_peer_venv()
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        private_server(Path(tmp_name) / "valkey") as server,
        otlp_sink() as sink_url,
    ):
        tmp = Path(tmp_name)
        b = Bench(quick, tmp, server.url)
        # Tracing on: the same processes exporting every span over OTLP/HTTP to a sink that reads and drops them.
        b.traced_env = {**b.env, "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url}
        redis = await create_pool(
            RedisSettings.from_dsn(server.url), job_serializer=job_serializer, job_deserializer=job_deserializer
        )
        progress = Progress(b.runs * 16 + 6)
        try:
            for run in range(b.runs):
                for stack, stack_cm in (("ours", b.ours), ("peer", b.peer), ("traced", b.traced)):
                    await redis.flushdb()
                    with stack_cm() as (url, web_pid, worker_pid):
                        await http_workloads(b, redis, stack, url, (web_pid, worker_pid), progress)
                # Bare arq's defaults once: its figures are set by its 0.5 s poll, barely vary, and take a minute.
                stacks = ("ours", "peer", "arq_ours", "traced")
                for stack in (*stacks, "arq") if run == 0 else stacks:
                    await drain_and_fifty(b, redis, stack, progress)
        finally:
            await redis.aclose()
    from bench import commands, lateness, pickup, producers  # each starts its own private server

    pickup_figures = await pickup.main(40 if quick else 200)
    for stack, name in (("ours", "OURS"), ("arq", "ARQ_DEFAULTS"), ("arq_ours", "ARQ_OUR_SETTINGS")):
        b.add(stack, "pickup_p50_ms", pickup_figures[name]["ack_p50"])
        b.add(stack, "pickup_p95_ms", pickup_figures[name]["ack_p95"])
        b.add(stack, "pickup_call_p50_ms", pickup_figures[name]["call_p50"])
    progress.step("pickup latency")
    late = await lateness.main(200)
    for stack, name in (("ours", "OURS"), ("arq_ours", "ARQ_OUR_SETTINGS")):
        b.add(stack, "lateness_p50_ms", late[name]["p50"])
        b.add(stack, "lateness_p95_ms", late[name]["p95"])
    progress.step("scheduled-job lateness")
    per_job = await commands.main(200 if quick else 500)
    b.add("ours", "commands_per_job", per_job["ours"])
    b.add("arq", "commands_per_job", per_job["bare arq"])
    progress.step("Redis commands per job")
    producer_figures = await producers.main(quick)
    progress.step("producers: enqueue_many, POST /jobs/batch, result()")
    print(file=sys.stderr)
    report = table(b) + "\n\n" + producers.table(producer_figures)
    print(report)
    write_results(report, quick, b.runs)


@contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint that accepts every export and drops it: what a collector costs is not ours."""

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write_results(report: str, quick: bool, runs: int) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    header = (
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC - {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}"
        f" - {'quick, 1 run' if quick else f'median of {runs} runs'}\n\n"
    )
    path = ROOT / "bench" / "RESULTS.md"
    intro = "# Benchmark results\n\n`make bench` writes a section here each time it runs (newest first).\n\n"
    previous = path.read_text().removeprefix(intro) if path.exists() else ""
    path.write_text(intro + header + report + "\n\n" + previous)


if __name__ == "__main__":
    asyncio.run(main("--quick" in sys.argv))
