"""Short claims on running jobs, kept alive from a thread, so a dead worker's jobs run again within seconds.

arq marks a job it starts with an in-progress key that lives for the largest job timeout + 10 s (310 s with the
defaults): a worker killed mid-job leaves its job unclaimable for that long. Our workers claim a job for
CLAIM_TTL_S instead (`take.TAKE`, for the jobs this service queued; a job queued by another client keeps
arq's claim), and this keeper renews the keys of the worker's running jobs every RENEW_EVERY_S. When the
process dies the renewals stop and the keys expire; the next poll of any worker runs the job again.

The keeper is a thread with its own connection, not an asyncio task: a job that blocks the event loop (which it
must not, and ruff's ASYNC rules look for) still keeps its claim for a while, so no second worker starts a copy of
a job that is merely slow. But not for ever: once the loop has not answered for longer than `stall_limit_s` (the
worker's longest job timeout + 10 s, the lifetime arq itself gives a claim), arq could not have enforced any job's
timeout either, and the keeper stops renewing, so the claims expire and other workers run those jobs again (their
effects stay single). If the loop comes back, the renewals resume for the jobs still running. docs/operations.md
has the reasoning.
"""

import logging
import threading
from collections.abc import Callable

import redis
from arq.constants import in_progress_key_prefix

logger = logging.getLogger(__name__)

CLAIM_TTL_S = 10
RENEW_EVERY_S = 2.0


class ClaimKeeper:
    def __init__(
        self,
        connect: Callable[[], redis.Redis],
        stalled_for: Callable[[], float] = lambda: 0.0,
        stall_limit_s: float = float("inf"),
    ) -> None:
        self._connect = connect  # a synchronous client to the primary (`connections.sync_redis`)
        self._stalled_for = stalled_for
        self._stall_limit_s = stall_limit_s
        self._stalled = False
        self._job_ids: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claim-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=RENEW_EVERY_S + 5)

    def hold(self, job_id: str) -> None:
        with self._lock:
            self._job_ids.add(job_id)

    def release(self, job_id: str) -> None:
        with self._lock:
            self._job_ids.discard(job_id)

    def renew(self, client: redis.Redis) -> None:
        with self._lock:
            job_ids = list(self._job_ids)
        if not job_ids or self._loop_stalled():
            return
        with client.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                # PEXPIRE never creates a key: a claim arq has already deleted stays deleted.
                pipe.pexpire(in_progress_key_prefix + job_id, CLAIM_TTL_S * 1000)
            pipe.execute()

    def _loop_stalled(self) -> bool:
        stalled = self._stalled_for() > self._stall_limit_s
        if stalled and not self._stalled:
            logger.error(
                "the worker's event loop has not answered for over %.0f s: its jobs' claims are no longer renewed, "
                "so other workers will run them again",
                self._stall_limit_s,
            )
        elif self._stalled and not stalled:
            logger.warning("the worker's event loop answers again: renewing its jobs' claims")
        self._stalled = stalled
        return stalled

    def _run(self) -> None:
        client = self._connect()
        try:
            while not self._stopped.wait(RENEW_EVERY_S):
                try:
                    self.renew(client)
                except (redis.RedisError, OSError) as e:
                    logger.warning("could not renew job claims: %r", e)
        finally:
            client.close()
