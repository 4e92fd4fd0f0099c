"""A million-row report through real processes: the worker's peak RSS while writing it, and download throughput.

    .venv/bin/python -m bench.reports [ROWS]

Starts a private valkey-server, `arq worker_settings.WorkerSettings` and uvicorn on free ports (SLEEP_SCALE=0.01,
so the 20 s of simulated work take 0.2 s), requests the report, samples the worker's RSS every 10 ms while it
runs (and reads the kernel's high-water mark, VmHWM), then downloads the file three times and prints the median
throughput.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from service.auth import create_token
from service.devserver import ValkeyServer, free_port

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-" + "x" * 40


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def wait_http(url: str) -> None:
    for _ in range(300):
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = ValkeyServer(free_port(), Path(tmp) / "valkey")
        server.start()
        port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": server.url,
            "DATA_DIR": f"{tmp}/data",
            "SLEEP_SCALE": "0.01",
            "SECRET_KEY": SECRET,
        }
        logs = open(Path(tmp) / "procs.log", "wb")  # noqa: SIM115  # open for the processes' whole lives
        worker = subprocess.Popen(
            [sys.executable, "-m", "arq", "worker_settings.WorkerSettings"], cwd=ROOT, env=env, stdout=logs, stderr=logs
        )
        web = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.main:app", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=logs,
            stderr=logs,
        )
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {create_token('bench', SECRET)}"}
        try:
            wait_http(url + "/health")
            while httpx.get(url + "/health").json()["workers"] < 1:
                time.sleep(0.05)
            idle = rss_kib(worker.pid)
            location = httpx.post(url + "/reports", json={"rows": rows}, headers=headers).headers["location"]
            started, samples = time.perf_counter(), []
            while httpx.get(url + location, headers=headers).json()["status"] != "SUCCESS":
                samples.append(rss_kib(worker.pid))
                time.sleep(0.01)
            took = time.perf_counter() - started
            peak = rss_kib(worker.pid, "VmHWM")
            rates, size = [], 0
            for _ in range(3):
                t0 = time.perf_counter()
                size = 0
                with httpx.stream("GET", url + location + "/download", headers=headers) as response:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                rates.append(size / (time.perf_counter() - t0) / 1e6)
            print(f"rows {rows:,}  file {size / 1e6:.1f} MB  generated in {took:.2f} s")
            print(
                f"worker RSS: idle {idle / 1024:.1f} MiB, sampled max while writing {max(samples, default=0) / 1024:.1f} MiB, VmHWM {peak / 1024:.1f} MiB"
            )
            print(f"download: median {statistics.median(rates):.0f} MB/s over 3 runs (uvicorn, one process, loopback)")
        finally:
            for proc in (web, worker):
                proc.terminate()
                proc.wait(10)
            logs.close()
            server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
