"""Aborts of jobs a worker runs, or has claimed and is about to run (`service.engine.aborts.Aborts`)."""

import asyncio
from typing import Any

from service.engine.aborts import Aborts


def _aborts() -> tuple[Aborts, dict[str, "asyncio.Task[Any]"], set[str]]:
    job_tasks: dict[str, asyncio.Task[Any]] = {}  # arq's Worker.job_tasks and aborting_tasks
    aborting: set[str] = set()
    return Aborts(job_tasks, aborting), job_tasks, aborting


async def test_a_running_job_is_cancelled_as_arq_cancels_an_aborted_job() -> None:
    aborts, job_tasks, aborting = _aborts()
    job_tasks["j1"] = task = asyncio.create_task(asyncio.sleep(3600))
    assert aborts.abort("j1")
    assert aborting == {"j1"}  # arq's run_job then records the cancellation as the result: REVOKED
    await asyncio.wait({task})
    assert task.cancelled()


async def test_an_abort_between_the_claim_and_the_start_reaches_the_job() -> None:
    aborts, _, aborting = _aborts()
    aborts.starting("j2")
    assert aborts.abort("j2")  # no task yet: kept for the job's wrapper
    assert aborts.pending("j2") and not aborting
    aborts.forget("j2")
    assert not aborts.pending("j2")


async def test_an_abort_of_a_job_this_worker_does_not_run_is_ignored() -> None:
    aborts, _, _ = _aborts()
    assert not aborts.abort("elsewhere")
    aborts.starting("j3")
    aborts.forget("j3")  # its run ended (arq may fail a job before its wrapper runs)
    assert not aborts.abort("j3")
    aborts.starting("j4")
    assert not aborts.pending("j4")


async def test_an_abort_heard_before_the_claim_s_reply_reaches_the_job() -> None:
    # The take script has claimed the job in Redis, the API has seen it STARTED and published the abort, and the
    # subscription delivers it before the worker has read the script's reply.
    aborts, _, _ = _aborts()
    assert not aborts.abort("j5")
    aborts.starting("j5")
    assert aborts.pending("j5")
    aborts.forget("j5")
    aborts.starting("j5")  # heard once: a later claim of the same id is not aborted by it again
    assert not aborts.pending("j5")
