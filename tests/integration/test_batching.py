"""The worker's command batcher against a real server: each caller's own replies and errors, nothing extra."""

import asyncio

from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from service.engine.batching import CommandBatcher


async def test_callers_in_one_turn_share_a_pipeline_and_keep_their_own_replies(arq_pool: ArqRedis) -> None:
    batcher = CommandBatcher(arq_pool)
    await arq_pool.set("text", "not a number")
    await arq_pool.config_resetstat()
    first = batcher.send(lambda pipe: pipe.incr("a").incr("a"))  # type: ignore[union-attr]  # a pipeline chains
    broken = batcher.send(lambda pipe: pipe.incr("b").incr("text"))  # type: ignore[union-attr]  # the second fails
    third = batcher.send(lambda pipe: pipe.get("a"))
    results = await asyncio.gather(first, broken, third, return_exceptions=True)
    assert results[0] == [1, 2]
    assert isinstance(results[1], ResponseError)
    assert results[2] == [b"2"]
    # The five commands and nothing else of the batcher's own (redis-py sends INCR as INCRBY).
    stats = await arq_pool.info("commandstats")
    assert {name: stat["calls"] for name, stat in stats.items() if name != "cmdstat_config|resetstat"} == {
        "cmdstat_incrby": 4,
        "cmdstat_get": 1,
    }
    assert await arq_pool.get("b") == b"1"  # not a transaction: the failing caller's other command ran
