"""Aborts of jobs this process runs, or has claimed and is about to run."""

import asyncio

import pytest
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from service.engine import aborts
from service.engine.dequeue import Started, _AnsweredPipeline


async def test_an_abort_between_the_claim_and_the_start_reaches_the_job() -> None:
    aborts.starting("j1")
    assert aborts.abort("j1")  # the wrapper is not running yet: kept for it

    async def wrapper() -> bool:
        return aborts.track("j1")

    assert await asyncio.create_task(wrapper())
    aborts.untrack("j1")
    aborts.forget("j1")


async def test_an_abort_of_a_job_this_process_does_not_run_is_ignored() -> None:
    assert not aborts.abort("elsewhere")
    aborts.starting("j2")
    aborts.forget("j2")  # its run ended (arq may fail a job before its wrapper runs)
    assert not aborts.abort("j2")

    async def wrapper() -> bool:
        return aborts.track("j2")

    assert not await asyncio.create_task(wrapper())
    aborts.untrack("j2")


async def test_arq_s_start_transaction_is_answered_only_if_it_is_the_one_the_script_ran() -> None:
    redis = ArqRedis(connection_pool=ConnectionPool.from_url("redis://127.0.0.1:1/0"))  # never connected
    replies = [b"definition", 1, True]
    async with _AnsweredPipeline(redis, Started("j3", None, True, False), replies) as pipe:
        pipe.get("arq:job:j3")
        pipe.incr("arq:retry:j3")
        pipe.expire("arq:retry:j3", 88400)
        assert await pipe.execute() == replies
    async with _AnsweredPipeline(redis, Started("j3", None, True, False), replies) as pipe:
        pipe.get("arq:job:j3")
        pipe.incr("arq:retry:j3")
        pipe.zrem("arq:abort", "j3")
        with pytest.raises(RuntimeError, match="not the one TAKE_SCRIPT runs"):
            await pipe.execute()


async def test_an_abort_heard_before_the_claim_s_reply_reaches_the_job() -> None:
    # The take script has claimed the job in Redis, the API has seen it STARTED and published the abort, and the
    # subscription delivers it before the worker has read the script's reply.
    assert not aborts.abort("j4")
    aborts.starting("j4")

    async def wrapper() -> bool:
        return aborts.track("j4")

    assert await asyncio.create_task(wrapper())
    aborts.untrack("j4")
    aborts.forget("j4")
    aborts.starting("j4")  # heard once: a later claim of the same id is not aborted by it again
    assert not aborts.was_aborted("j4")
    aborts.forget("j4")
