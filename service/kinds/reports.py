"""CSV reports owned by a user: streamed to a temporary file in steps with progress, then renamed into place."""

import asyncio
import csv
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from service.core.failures import PermanentFailure
from service.kinds.context import JobContext
from service.kinds.declare import job_kind
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


class ReportArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: Annotated[StrictInt, Field(ge=1, le=1_000_000, description="data rows in the CSV")] = 1000


class ReportResult(BaseModel):
    rows: int
    bytes: int


async def remove_report(settings: Settings, job_id: str, owner: str | None) -> None:
    """A deleted report's file goes with it."""
    if owner is not None:
        await asyncio.to_thread(report_path(settings, owner, job_id).unlink, missing_ok=True)


@job_kind(
    args=ReportArgs,
    result=ReportResult,
    title="Report",
    description="Write a CSV report of `rows` rows for its owner over about 20 s, with progress",
    owner_required=True,
    queue="reports",  # a thousand reports never make a notification wait
    on_delete=remove_report,
)
async def generate_report(job: JobContext, args: ReportArgs) -> ReportResult:
    if job.owner is None:
        raise PermanentFailure("a report needs an owner: enqueue it with a bearer token")
    owner, rows = job.owner, args.rows
    final = report_path(job.settings, owner, job.id)
    tmp = final.with_name(f".{job.id}.{job.attempt}.tmp")
    await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
    f = await asyncio.to_thread(tmp.open, "w", newline="", encoding="utf-8")
    try:
        steps = min(PROGRESS_STEPS, rows)
        await job.progress(0, rows)
        for step in range(steps):
            start, stop = rows * step // steps, rows * (step + 1) // steps
            await asyncio.to_thread(_write_rows, f, owner, start, stop)
            await job.progress(stop, rows)
            await job.sleep(REPORT_SECONDS / steps)
        size = await asyncio.to_thread(_publish_file, f, tmp, final)
    finally:
        f.close()
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
    return ReportResult(rows=rows, bytes=size)


def _report_files(reports_dir: Path) -> list[tuple[str, Path]]:
    """(job id, path) of every report and leftover temporary file."""
    found = []
    for path in reports_dir.glob("*/*"):
        if path.suffix == ".csv":
            found.append((path.stem, path))
        elif path.suffix == ".tmp":
            found.append((path.name.split(".")[1], path))
    return found


async def remove_expired_reports(redis: ArqRedis, settings: Settings) -> int:
    """Delete report files whose job is gone (result expired) and temporary files of dead tries (a cron job of the
    engine's housekeeping)."""
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
