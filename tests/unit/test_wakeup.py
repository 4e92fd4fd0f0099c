"""The replacement for arq's poll loop wakes at once on a wake-up, and otherwise waits out its step."""

import asyncio

import arq.worker

from service.jobs import wakeup


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
