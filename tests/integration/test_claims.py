"""The claim keeper renews the claims of a worker's running jobs, but not for a worker whose event loop has been
blocked past the longest job timeout: those jobs are then left to run again elsewhere."""

from typing import Any

import redis

from service.dev.server import ValkeyServer
from service.engine.claims import CLAIM_TTL_S, ClaimKeeper

CLAIM = "arq:in-progress:j1"


def test_claims_are_renewed_while_the_loop_answers_and_left_to_expire_once_it_is_stalled(
    redis_server: ValkeyServer,
) -> None:
    client: Any = redis.Redis.from_url(redis_server.url)  # redis-py types sync replies as Awaitable | Any
    stalled_for = [0.0]
    keeper = ClaimKeeper(lambda: redis.Redis.from_url(redis_server.url), lambda: stalled_for[0], stall_limit_s=310)
    keeper.hold("j1")
    try:
        client.psetex(CLAIM, 1000, b"1")
        keeper.renew(client)
        assert client.pttl(CLAIM) > 1000  # renewed to CLAIM_TTL_S
        stalled_for[0] = 311  # the loop has not answered for longer than any job may run
        client.psetex(CLAIM, 1000, b"1")
        keeper.renew(client)
        assert client.pttl(CLAIM) <= 1000  # not renewed: it expires, and another worker takes the job
        stalled_for[0] = 0.5  # the loop answers again
        keeper.renew(client)
        assert 1000 < client.pttl(CLAIM) <= CLAIM_TTL_S * 1000
    finally:
        client.delete(CLAIM)
        client.close()
