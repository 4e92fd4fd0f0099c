"""The replacement for arq's poll loop wakes at once on a wake-up, and otherwise waits out its step."""

import asyncio
import contextlib

import arq.worker

from service.engine import wakeup


async def test_a_wakeup_ends_the_wait_at_once() -> None:
    ticks = wakeup.poll(step=3600)
    await anext(ticks)
    next_tick = asyncio.ensure_future(anext(ticks))
    await asyncio.sleep(0)
    assert not next_tick.done()  # waiting out its hour-long step
    wakeup.wake_local()
    await asyncio.wait_for(next_tick, timeout=5)


async def test_a_wakeup_during_an_iteration_is_not_lost() -> None:
    ticks = wakeup.poll(step=3600)
    await anext(ticks)
    wakeup.wake_local()  # arrives while the worker is still looking at the queue
    await asyncio.wait_for(anext(ticks), timeout=5)


def test_installed_into_arq_by_worker_settings() -> None:
    import worker_settings  # noqa: F401

    assert arq.worker.poll is wakeup.poll


async def test_a_cancellation_dropped_inside_an_iteration_still_ends_the_worker_loop() -> None:
    looked = asyncio.Event()

    async def worker_loop() -> None:
        async for _ in wakeup.poll(step=0):
            looked.set()
            # As Python 3.11's asyncio.wait_for does when what it awaits completes in the same turn as the cancel.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    task = asyncio.create_task(worker_loop())
    await looked.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)  # a hang guard, not a speed check
    assert task in done and task.cancelled()
