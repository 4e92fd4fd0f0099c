"""arq's per-job transactions, sent to Redis together: one write for every MULTI/EXEC block queued in a loop turn.

arq opens two transactions for every job it runs (`Worker.run_job` reads the job and counts the try,
`Worker.finish_job` stores the result and clears the job), each a round trip of its own: a checkout from the
pool, a socket write, a wait and a read per job and per transaction: about a third of a busy worker's CPU
(cProfile of a drain). The first is now run by the take script (`dequeue`); the second, and the first where
arq checks aborts itself, come here. Redis runs each MULTI/EXEC block atomically whatever else shares the
connection, so the blocks that jobs queue within one turn of the event loop go out in one write on one
connection, and each pipeline then reads its own replies back in order with redis-py's own code
(`Pipeline._execute_transaction`): results, response callbacks and errors are exactly redis-py's.

Only transactions without WATCH are batched (arq's enqueue watches its key and keeps redis-py's path). When the
connection breaks, the transactions whose replies were not read are run again one by one through redis-py's
retrying `execute`, as redis-py itself retries a transaction whose connection broke.
"""

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from arq.connections import ArqRedis
from redis.asyncio.client import CommandStackT, Pipeline
from redis.asyncio.connection import Connection
from redis.client import EMPTY_RESPONSE
from redis.exceptions import ConnectionError, ResponseError, TimeoutError, WatchError

from service.engine.batching import TurnBatcher

_BROKEN = (ConnectionError, TimeoutError, OSError)


class _AlreadySent:
    """The batch's connection as a pipeline sees it: its commands went out with the batch, so it only reads."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def pack_commands(self, commands: Any) -> list[bytes]:
        return []

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


@dataclass
class _Queued:
    pipe: "CoalescingPipeline"
    # A copy: the pipeline clears its own stack as soon as its caller stops waiting (a cancelled job).
    stack: CommandStackT
    raise_on_error: bool
    future: "asyncio.Future[list[Any]]" = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def settle(self, result: list[Any] | None = None, error: BaseException | None = None) -> None:
        if self.future.done():  # its caller was cancelled
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result or [])


class TransactionBatcher(TurnBatcher[_Queued]):
    def __init__(self, redis: ArqRedis) -> None:
        super().__init__()
        self._pool = redis.connection_pool

    def submit(self, pipe: "CoalescingPipeline", raise_on_error: bool) -> "asyncio.Future[list[Any]]":
        queued = _Queued(pipe, list(pipe.command_stack), raise_on_error)
        self._queue(queued)
        return queued.future

    async def _execute(self, batch: list[_Queued]) -> None:
        try:
            await self._execute_on_a_connection(batch)
        except BaseException as e:  # whatever went wrong, no caller is left waiting
            for queued in batch:
                queued.settle(error=e if isinstance(e, Exception) else asyncio.CancelledError())
            if not isinstance(e, Exception):
                raise

    async def _execute_on_a_connection(self, batch: list[_Queued]) -> None:
        try:
            connection: Connection = await self._pool.get_connection()
        except _BROKEN:
            await self._one_by_one(batch)
            return
        try:
            unread = await self._send_and_read(connection, batch)
        except BaseException:  # the connection's replies are out of step with the batch: drop it
            await connection.disconnect()
            raise
        else:
            if unread:
                await connection.disconnect()
                await self._one_by_one(unread)
        finally:
            await self._pool.release(connection)

    @staticmethod
    async def _send_and_read(connection: Connection, batch: list[_Queued]) -> list[_Queued]:
        """Send every transaction of the batch in one write and read each one's replies; returns those whose
        replies could not be read because the connection broke."""
        commands = [
            args
            for queued in batch
            for args, options in ((("MULTI",), {}), *queued.stack, (("EXEC",), {}))
            if EMPTY_RESPONSE not in options
        ]
        await connection.send_packed_command(connection.pack_commands(commands))
        sent = cast(Connection, _AlreadySent(connection))
        for n, queued in enumerate(batch):
            try:
                result = await queued.pipe._execute_transaction(sent, queued.stack, queued.raise_on_error)
            except (ResponseError, WatchError) as e:  # raised once all its replies are read: its caller's alone
                queued.settle(error=e)
            except _BROKEN:
                return batch[n:]
            else:
                queued.settle(result)
        return []

    @staticmethod
    async def _one_by_one(batch: list[_Queued]) -> None:
        for queued in batch:
            if queued.future.done():
                continue
            alone = Pipeline(queued.pipe.connection_pool, queued.pipe.response_callbacks, True, None)
            alone.command_stack = queued.stack
            try:
                queued.settle(await alone.execute(queued.raise_on_error))
            except (ResponseError, WatchError, *_BROKEN) as e:
                queued.settle(error=e)


class CoalescingPipeline(Pipeline):
    """A redis-py pipeline whose plain transactions (no WATCH) go out with the others of this loop turn."""

    def __init__(self, redis: ArqRedis, batcher: TransactionBatcher, transaction: bool, shard_hint: Any) -> None:
        super().__init__(redis.connection_pool, redis.response_callbacks, transaction, shard_hint)
        self._batcher = batcher

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        if not self.is_transaction or self.watching or self.explicit_transaction or not self.command_stack:
            result: list[Any] = await super().execute(raise_on_error)
            return result
        try:
            return await self._batcher.submit(self, raise_on_error)
        finally:
            await self.reset()  # type: ignore[no-untyped-call]


def coalesce_transactions(redis: ArqRedis) -> TransactionBatcher:
    """Make `redis.pipeline()` batch its plain transactions: for the pool arq's worker runs jobs with."""
    batcher = TransactionBatcher(redis)

    def pipeline(transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return CoalescingPipeline(redis, batcher, transaction, shard_hint)

    redis.pipeline = pipeline  # type: ignore[method-assign]
    return batcher
