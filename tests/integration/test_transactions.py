"""arq's transactions batched per loop turn (service.engine.transactions), against a real server."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from arq.connections import ArqRedis
from redis.exceptions import ConnectionError, ResponseError

from service.core.connections import web_redis
from service.dev.server import ValkeyServer
from service.engine.transactions import coalesce_transactions
from tests.conftest import make_settings


def count_checkouts(redis: ArqRedis) -> list[str]:
    """Record every connection the pool hands out (one per round trip of a pipeline)."""
    pool = redis.connection_pool
    taken: list[str] = []
    get_connection = pool.get_connection

    async def counting(*args: Any, **options: Any) -> Any:
        taken.append("connection")
        return await get_connection(*args, **options)

    pool.get_connection = counting  # type: ignore[method-assign]
    return taken


async def run_job_start(redis: ArqRedis, job_id: str) -> list[Any]:
    """What arq's `Worker.run_job` sends first for every job."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(f"arq:job:{job_id}")
        pipe.incr(f"arq:retry:{job_id}")
        pipe.expire(f"arq:retry:{job_id}", 88400)
        return await pipe.execute()


async def test_transactions_of_one_turn_share_one_round_trip_and_keep_their_own_replies(arq_pool: ArqRedis) -> None:
    coalesce_transactions(arq_pool)
    for n in range(10):
        await arq_pool.set(f"arq:job:{n}", f"payload-{n}")
    await arq_pool.set("arq:retry:3", 4)
    taken = count_checkouts(arq_pool)
    replies = await asyncio.gather(*(run_job_start(arq_pool, str(n)) for n in range(10)))
    assert taken == ["connection"]  # one checkout, one write, for the ten transactions
    # Each its own replies, with redis-py's callbacks applied (EXPIRE answers True).
    assert replies == [[f"payload-{n}".encode(), 5 if n == 3 else 1, True] for n in range(10)]


async def test_an_error_in_one_transaction_is_its_callers_alone(arq_pool: ArqRedis) -> None:
    coalesce_transactions(arq_pool)
    await arq_pool.set("text", "not a number")

    async def broken() -> list[Any]:
        async with arq_pool.pipeline(transaction=True) as pipe:
            pipe.incr("counter")
            pipe.incr("text")  # fails inside the transaction
            return await pipe.execute()

    results = await asyncio.gather(
        run_job_start(arq_pool, "a"), broken(), run_job_start(arq_pool, "b"), return_exceptions=True
    )
    assert results[0] == [None, 1, True] and results[2] == [None, 1, True]
    assert isinstance(results[1], ResponseError)
    assert await arq_pool.get("counter") == b"1"  # as in any Redis transaction, the other command ran


async def test_a_cancelled_caller_leaves_the_connection_in_step(arq_pool: ArqRedis) -> None:
    coalesce_transactions(arq_pool)
    await arq_pool.set("arq:job:kept", "kept")
    cancelled = asyncio.ensure_future(run_job_start(arq_pool, "gone"))
    kept = asyncio.ensure_future(run_job_start(arq_pool, "kept"))
    await asyncio.sleep(0)  # both queued in this turn
    cancelled.cancel()
    assert await kept == [b"kept", 1, True]
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    # Its transaction ran all the same, and every later reply still matches its command.
    assert await arq_pool.get("arq:retry:gone") == b"1"
    assert [await run_job_start(arq_pool, "kept") for _ in range(3)] == [[b"kept", n, True] for n in (2, 3, 4)]


async def test_watched_transactions_keep_redis_pys_own_path(arq_pool: ArqRedis) -> None:
    coalesce_transactions(arq_pool)
    job = await arq_pool.enqueue_job("some_function", _job_id="watched")  # arq's enqueue uses WATCH
    assert job is not None and await arq_pool.exists("arq:job:watched")
    assert await arq_pool.enqueue_job("some_function", _job_id="watched") is None  # and sees the key it watched


async def test_a_server_that_is_gone_fails_the_callers_without_hanging(
    redis_server_factory: Callable[..., ValkeyServer], tmp_path: Any
) -> None:
    server = redis_server_factory()
    redis = web_redis(make_settings(tmp_path, server.url))
    coalesce_transactions(redis)
    assert await run_job_start(redis, "before") == [None, 1, True]
    server.stop()
    results = await asyncio.gather(run_job_start(redis, "a"), run_job_start(redis, "b"), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results), results
    await redis.aclose(close_connection_pool=True)
