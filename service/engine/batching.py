"""Bookkeeping commands of many jobs, sent to Redis in one pipeline per turn of the event loop.

A worker running a hundred jobs at once records each start and announces each end: a round trip each, and a
socket write each, which was most of a busy worker's CPU besides arq's own round trips. Redis-py has no
automatic pipelining, so `CommandBatcher` does it: a job adds its commands and awaits their replies; everything
added within one turn of the loop goes out together, and each job gets its own slice of the replies (or the
error of one of its own commands, as if it had sent them itself).
"""

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

Commands = Callable[[Pipeline], Any]
T = TypeVar("T")


class TurnBatcher(Generic[T]):
    """Collects what is queued within one turn of the event loop and hands it to `_execute` as one batch."""

    def __init__(self) -> None:
        self._pending: list[T] = []
        self._sending: set[asyncio.Task[None]] = set()

    def _queue(self, item: T) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(item)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._execute(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _execute(self, batch: list[T]) -> None:
        raise NotImplementedError

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait, up to `timeout_s`, for the batches in flight: before the pool they use is closed."""
        await asyncio.sleep(0)  # what was queued in this turn is sent in the next
        if self._sending:
            await asyncio.wait(self._sending, timeout=timeout_s)


class CommandBatcher(TurnBatcher[tuple[Commands, "asyncio.Future[list[Any]]"]]):
    def __init__(self, redis: ArqRedis) -> None:
        super().__init__()
        self._redis = redis

    def send(self, commands: Commands) -> "asyncio.Future[list[Any]]":
        """Queue `commands(pipe)` for the next pipeline; the future holds their replies."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue((commands, future))
        return future

    async def _execute(self, batch: list[tuple[Commands, "asyncio.Future[list[Any]]"]]) -> None:
        slices = []
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for commands, _ in batch:
                    start = len(pipe)
                    commands(pipe)
                    slices.append(slice(start, len(pipe)))
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as e:  # every job in the batch sees the error it would have had alone
            for _, future in batch:
                if not future.done():
                    future.set_exception(e if isinstance(e, Exception) else asyncio.CancelledError())
            if not isinstance(e, Exception):
                raise
            return
        for (_, future), part in zip(batch, slices, strict=True):
            if future.done():  # the job was cancelled meanwhile
                continue
            mine = replies[part]
            error = next((reply for reply in mine if isinstance(reply, Exception)), None)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(mine)
