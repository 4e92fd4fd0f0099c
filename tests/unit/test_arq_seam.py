"""The one seam into arq: `ServiceWorker`, selected by one line, on the arq version it was tested with."""

import asyncio
import contextlib

import arq.utils
import arq.worker
import pytest
from arq.connections import ArqRedis
from arq.worker import create_worker
from redis.asyncio import ConnectionPool

from service.engine import ServiceWorker, compat


def test_the_worker_refuses_an_arq_version_it_was_not_tested_with() -> None:
    compat.check_arq_version()  # the installed one
    with pytest.raises(compat.UntestedArqVersion, match=r"arq 0\.29\.0 is installed.*tested with arq 0\.28\.0"):
        compat.check_arq_version("0.29.0")


def test_the_arq_code_the_worker_relies_on_is_the_code_it_was_tested_with() -> None:
    # Fails when a new arq release changes any method the override replaces or depends on: read the change, adapt
    # service/engine/worker.py, then record the new fingerprints (and the version in TESTED_ARQ_VERSIONS).
    assert compat.source_fingerprints() == compat.RELIED_ON


async def test_worker_settings_selects_the_subclass_and_patches_nothing_else() -> None:
    import worker_settings

    assert arq.worker.Worker is ServiceWorker  # what arq's CLI builds
    assert isinstance(create_worker(worker_settings.WorkerSettings), ServiceWorker)  # type: ignore[arg-type]  # arq's stubs want its own base class
    base = ServiceWorker.__mro__[1]
    assert base.__module__ == "arq.worker"
    # arq's own code is arq's: its poll loop and its methods are the originals.
    assert arq.worker.poll is arq.utils.poll
    for name in ("_poll_iteration", "start_jobs", "run_job", "finish_job", "close"):
        assert getattr(base, name).__module__ == "arq.worker", name


async def test_a_cancellation_dropped_inside_an_iteration_still_ends_the_worker_loop() -> None:
    never_connected = ArqRedis(connection_pool=ConnectionPool.from_url("redis://127.0.0.1:1/0"))
    worker = ServiceWorker([arq.worker.func(asyncio.sleep, name="noop")], redis_pool=never_connected)  # type: ignore[arg-type]  # asyncio.sleep is overloaded

    async def loop() -> None:
        # As Python 3.11's asyncio.wait_for does when what it awaits completes in the same turn as the cancel.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await worker._poll_iteration()  # the worker's next look at the queue

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)  # a hang guard, not a speed check
    assert task in done and task.cancelled()


def test_an_in_process_worker_is_built_as_the_cli_builds_one() -> None:
    """`worker_options` (what `service.testing`'s `run_jobs` builds its worker from) says what `WorkerSettings`
    says, so a team's tests run their kinds as `arq worker_settings.WorkerSettings` would."""
    import worker_settings
    from service.engine import worker_options

    declared = {k: v for k, v in vars(worker_settings.WorkerSettings).items() if not k.startswith("_")}
    options = worker_options(worker_settings.WorkerSettings.settings, worker_settings._kinds)
    assert set(declared) - set(options) == {"redis_settings"}  # an in-process worker is given its pool
    for name, value in options.items():
        if name in ("functions", "cron_jobs"):
            assert [f.name for f in value] == [f.name for f in declared[name]], name
        else:
            assert value == declared[name], name
