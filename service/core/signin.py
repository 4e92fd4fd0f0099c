"""One-time sign-in links: a short-lived code in Redis that a browser trades, once, for a bearer token.

`make run` prints one for the demo admin, so the dashboard opens signed in; `python -m service signin-link USER`
makes one for anyone. The code travels in the URL's fragment (`/dashboard#signin=<code>`), which browsers never
send to a server or put in a Referer, and it is gone from Redis the moment it is used (GETDEL) or after its TTL.
"""

import secrets

from arq.connections import ArqRedis
from redis.client import Redis

from service.core.keys import PREFIX

LINK_TTL_S = 600


def _key(code: str) -> str:
    return f"{PREFIX}signin:{code}"


def create_code(redis: Redis, token: str, ttl_s: int = LINK_TTL_S) -> str:
    """Store `token` under a new random code for `ttl_s` (a synchronous client: the command line uses it)."""
    code = secrets.token_urlsafe(24)
    redis.set(_key(code), token, ex=ttl_s, nx=True)
    return code


async def redeem(redis: ArqRedis, code: str) -> str | None:
    """The token stored under `code`, once: a second use, or a use after the TTL, finds nothing."""
    token: bytes | None = await redis.getdel(_key(code))
    return token.decode() if token else None
