"""Lua scripts with names, each loaded once and called one way.

    READ = LuaScript("read", source)
    replies = await READ.run(redis, keys, args)            # one call
    READ.queue(pipe, keys, args); await run_pipeline(...)  # many in one round trip
    READ.queue_in_transaction(tr, keys, args)              # inside MULTI/EXEC, with the commands around it

The SHA-1 is computed once, when the module is imported. A call or a pipeline sends EVALSHA; a server that does
not know the script yet (first use, a restart, a failover to a replica, SCRIPT FLUSH) answers NOSCRIPT, and the
script is loaded and the call or the pipeline sent again, once: the one NOSCRIPT path for every script. A
transaction cannot be sent again (what ran before the failed EVALSHA would run twice), so it carries the source
(EVAL): the few transactions that run a script pay for its bytes, never for a half-applied transaction.
"""

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

Arg = str | int | float | bytes

# Every script of the service, by name: what a test or an operator can list and load.
SCRIPTS: dict[str, "LuaScript"] = {}


class LuaScript:
    def __init__(self, name: str, source: str) -> None:
        if name in SCRIPTS:
            raise ValueError(f"a script named {name!r} exists already")
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # Redis names a script by the SHA-1 of its source
        SCRIPTS[name] = self

    def __repr__(self) -> str:
        return f"LuaScript({self.name!r}, sha={self.sha[:8]})"

    async def run(self, redis: ArqRedis, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run it once: EVALSHA, and after a NOSCRIPT answer, load it and run it again."""
        try:
            return await self._evalsha(redis, keys, args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await self._evalsha(redis, keys, args)

    def queue(self, pipe: Pipeline, keys: Sequence[str], args: Sequence[Arg]) -> None:
        """Add a call to a pipeline that `run_pipeline` sends."""
        self._evalsha(pipe, keys, args)

    def queue_in_transaction(self, tr: Pipeline, keys: Sequence[str], args: Sequence[Arg]) -> None:
        """Add a call to a MULTI/EXEC transaction: by its source, so that it never fails half-way for NOSCRIPT."""
        params: list[Any] = [*keys, *args]  # redis-py sends ints and bytes as they are; its stubs say str
        tr.eval(self.source, len(keys), *params)

    def _evalsha(self, client: ArqRedis | Pipeline, keys: Sequence[str], args: Sequence[Arg]) -> Awaitable[Any]:
        params: list[Any] = [*keys, *args]
        return cast(Awaitable[Any], client.evalsha(self.sha, len(keys), *params))


async def run_pipeline(
    redis: ArqRedis, build: Callable[[Pipeline], None], scripts: Sequence[LuaScript], *, transaction: bool = False
) -> list[Any]:
    """Build a pipeline with `build` (which queues `scripts` with `LuaScript.queue`) and send it; after a NOSCRIPT
    answer, load `scripts` and send it again, once. Only for pipelines that may run twice (reads, or writes that
    repeat to the same end): the commands before the failed one have run."""
    for attempt in (1, 2):
        async with redis.pipeline(transaction=transaction) as pipe:
            build(pipe)
            try:
                return await pipe.execute()
            except NoScriptError:
                if attempt == 2:
                    raise
        for script in scripts:
            await redis.script_load(script.source)
    raise AssertionError("unreachable")
