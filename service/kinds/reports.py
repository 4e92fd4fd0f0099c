"""CSV reports owned by a user: streamed to a temporary file in steps with progress, then renamed into place."""

import asyncio
import csv
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix

from service.core import keys
from service.kinds.context import job_redis, job_settings, scaled_sleep
from service.settings import Settings

logger = logging.getLogger(__name__)

REPORT_SECONDS = 20
PROGRESS_STEPS = 20
HEADER = ("row", "owner", "label", "amount")
# Characters that make a spreadsheet evaluate a cell as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def report_path(settings: Settings, owner: str, job_id: str) -> Path:
    return settings.reports_dir / owner / f"{job_id}.csv"


def neutralise(cell: str) -> str:
    """Prefix a quote to a cell a spreadsheet would run as a formula."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def report_rows(owner: str, start: int, stop: int) -> Iterator[tuple[int, str, str, int]]:
    """Synthetic, deterministic rows, generated lazily so that memory stays flat for a million of them."""
    safe_owner = neutralise(owner)
    for n in range(start, stop):
        yield n + 1, safe_owner, f"item {n + 1}", (n * 7919) % 100_000 - 50_000


def _write_rows(f: IO[str], owner: str, start: int, stop: int) -> None:
    writer = csv.writer(f)
    if start == 0:
        writer.writerow(HEADER)
    writer.writerows(report_rows(owner, start, stop))


def _publish_file(f: IO[str], tmp: Path, final: Path) -> int:
    f.flush()
    os.fsync(f.fileno())
    f.close()
    os.replace(tmp, final)  # atomic: readers see no file, or the whole file
    return final.stat().st_size


async def set_progress(ctx: dict[str, Any], current: int, total: int) -> None:
    async with job_redis(ctx).pipeline(transaction=True) as pipe:
        pipe.hset(keys.job_record(ctx["job_id"]), mapping={"progress_current": current, "progress_total": total})
        pipe.publish(keys.job_events(ctx["job_id"]), b"")
        await pipe.execute()


async def generate_report(ctx: dict[str, Any], owner: str, rows: int) -> dict[str, int]:
    """Write `rows` CSV rows for `owner` over about 20 s (times SLEEP_SCALE), reporting progress each step."""
    settings, job_id = job_settings(ctx), ctx["job_id"]
    final = report_path(settings, owner, job_id)
    tmp = final.with_name(f".{job_id}.{ctx['job_try']}.tmp")
    await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
    f = await asyncio.to_thread(tmp.open, "w", newline="", encoding="utf-8")
    try:
        steps = min(PROGRESS_STEPS, rows)
        await set_progress(ctx, 0, rows)
        for step in range(steps):
            start, stop = rows * step // steps, rows * (step + 1) // steps
            await asyncio.to_thread(_write_rows, f, owner, start, stop)
            await set_progress(ctx, stop, rows)
            await scaled_sleep(ctx, REPORT_SECONDS / steps)
        size = await asyncio.to_thread(_publish_file, f, tmp, final)
    finally:
        f.close()
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
    return {"rows": rows, "bytes": size}


def _report_files(reports_dir: Path) -> list[tuple[str, Path]]:
    """(job id, path) of every report and leftover temporary file."""
    found = []
    for path in reports_dir.glob("*/*"):
        if path.suffix == ".csv":
            found.append((path.stem, path))
        elif path.suffix == ".tmp":
            found.append((path.name.split(".")[1], path))
    return found


async def remove_expired_reports(ctx: dict[str, Any]) -> int:
    """Cron: delete report files whose job is gone (result expired) and temporary files of dead tries."""
    settings, redis = job_settings(ctx), job_redis(ctx)
    files = await asyncio.to_thread(_report_files, settings.reports_dir)
    if not files:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for job_id, path in files:
            if path.suffix == ".csv":
                pipe.exists(result_key_prefix + job_id, job_key_prefix + job_id)
            else:  # a temporary file is garbage unless its job is running right now
                pipe.exists(in_progress_key_prefix + job_id)
        alive = await pipe.execute()
    doomed = [path for (_, path), live in zip(files, alive, strict=True) if not live]
    for path in doomed:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    if doomed:
        logger.info("removed %d expired report files", len(doomed))
    return len(doomed)
