"""A million-row report through real processes: the worker's peak RSS while writing it, and download throughput.

    .venv/bin/python -m bench.reports [ROWS]

Starts a private valkey-server, the worker and uvicorn (SLEEP_SCALE=0.01, so the 20 s of simulated work take
0.2 s), requests the report, samples the worker's RSS every 10 ms while it runs (and reads the kernel's high-water
mark, VmHWM), then downloads the file three times and prints the median throughput.
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import SECRET, bench_env, private_server, web, worker
from service.auth import create_token


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def download_mb_s(url: str, headers: dict[str, str]) -> tuple[float, int]:
    started, size = time.perf_counter(), 0
    with httpx.stream("GET", url, headers=headers) as response:
        for chunk in response.iter_bytes():
            size += len(chunk)
    return size / (time.perf_counter() - started) / 1e6, size


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, private_server(Path(tmp) / "valkey") as server:
        env = bench_env(server.url, Path(tmp) / "data", sleep_scale=0.01)
        headers = {"Authorization": f"Bearer {create_token('bench', SECRET)}"}
        with worker("bench.ours.OURS", env, Path(tmp) / "worker.log") as proc, web(env, Path(tmp) / "web.log") as url:
            idle = rss_kib(proc.pid)
            location = httpx.post(url + "/reports", json={"rows": rows}, headers=headers).headers["location"]
            started, samples = time.perf_counter(), []
            while httpx.get(url + location, headers=headers).json()["status"] != "SUCCESS":
                samples.append(rss_kib(proc.pid))
                time.sleep(0.01)
            took = time.perf_counter() - started
            peak = rss_kib(proc.pid, "VmHWM")
            downloads = [download_mb_s(url + location + "/download", headers) for _ in range(3)]
        size = downloads[0][1]
        print(f"rows {rows:,}  file {size / 1e6:.1f} MB  generated in {took:.2f} s")
        print(
            f"worker RSS: idle {idle / 1024:.1f} MiB, sampled max while writing "
            f"{max(samples, default=0) / 1024:.1f} MiB, VmHWM {peak / 1024:.1f} MiB"
        )
        print(
            f"download: median {statistics.median(d[0] for d in downloads):.0f} MB/s over 3 runs "
            "(uvicorn, one process, loopback)"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
