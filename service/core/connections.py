"""Redis clients for the web app, the workers and the command line: one server (REDIS_URL) or the primary that
Redis Sentinel names (REDIS_SENTINELS), with timeouts and retries that ride out a restart or a failover."""

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.sentinel
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, ReadOnlyError, TimeoutError

from service.core.serialization import job_deserializer, job_serializer
from service.settings import Settings

# The web app answers 503 rather than hang: two tries of at most 0.8 s each stay within the contract's 2 s.
WEB_SOCKET_TIMEOUT = 0.8
WEB_RETRIES = 1
# Errors a command is tried again after (on a new connection), by web and workers alike:
# - OSError: a refused or reset connect (the server is restarting) surfaces as the builtin ConnectionRefusedError
#   or ConnectionResetError, and redis-py's connect() retries only the errors listed here;
# - LOADING: a server replaying its data after a restart answers every command with it until it is done;
# - READONLY: a primary just demoted to a replica (a failover) refuses writes; through Sentinel a new connection
#   goes to the new primary.
RETRYABLE_ERRORS: list[type[Exception]] = [ConnectionError, TimeoutError, OSError, BusyLoadingError, ReadOnlyError]
SENTINEL_TIMEOUT_S = 0.5


def _sentinels(settings: Settings) -> list[tuple[str, int]]:
    addresses = []
    for entry in settings.redis_sentinels:
        parts = urlsplit(f"//{entry}")
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"REDIS_SENTINELS entry {entry!r} is not host:port")
        addresses.append((parts.hostname, parts.port))
    return addresses


def _credentials(settings: Settings) -> dict[str, Any]:
    """What REDIS_URL says beyond host and port: user, password, database, TLS."""
    url = urlsplit(settings.redis_url)
    db = url.path.lstrip("/")
    return {
        "username": unquote(url.username) if url.username else None,
        "password": unquote(url.password) if url.password else None,
        "db": int(db) if db.isdigit() else 0,
        "ssl": url.scheme == "rediss",
    }


def _sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "socket_timeout": SENTINEL_TIMEOUT_S,
        "socket_connect_timeout": SENTINEL_TIMEOUT_S,
        "password": settings.redis_sentinel_password,
    }


def uses_sentinel(settings: Settings) -> bool:
    return bool(settings.redis_sentinels)


class PrimaryConnection(SentinelManagedConnection):
    """redis-py's connection to the primary that the Sentinels name, asking them again at every try.

    redis-py 5.3's `SentinelManagedConnection.connect` retries "ask the Sentinels, then connect", but the connect
    to the address it got (`connect_to`) runs under the connection's own retry too: with a worker's endless retry
    it tried the dead primary for ever and never asked again (seen: workers silent after a failover). Here each
    address gets one try, and the outer retry, which backs off, asks the Sentinels for the next."""

    async def connect_to(self, address: tuple[str, int]) -> None:
        retry, self.retry = self.retry, Retry(NoBackoff(), 0)
        try:
            await super().connect_to(address)  # type: ignore[no-untyped-call]
        finally:
            self.retry = retry


class PrimarySSLConnection(PrimaryConnection, SSLConnection):
    """The same, over TLS (a `rediss://` REDIS_URL)."""


def _pool(settings: Settings, **kwargs: Any) -> ConnectionPool:
    if not uses_sentinel(settings):
        return ConnectionPool.from_url(settings.redis_url, **kwargs)
    connection = {**_credentials(settings), **kwargs}
    connection["connection_class"] = PrimarySSLConnection if connection.pop("ssl") else PrimaryConnection
    sentinel = Sentinel(_sentinels(settings), sentinel_kwargs=_sentinel_kwargs(settings), **connection)  # type: ignore[no-untyped-call]
    # The pool asks the Sentinels for the primary at each new connection, and drops its connections when the
    # primary has moved (a READONLY answer, or a connection to a demoted server).
    return SentinelConnectionPool(settings.redis_sentinel_master, sentinel, is_master=True, **connection)  # type: ignore[no-untyped-call]


def web_redis(settings: Settings) -> ArqRedis:
    """A lazily connecting client: the app starts while Redis is down, and `/health` says so."""
    pool = _pool(
        settings,
        socket_connect_timeout=WEB_SOCKET_TIMEOUT,
        socket_timeout=WEB_SOCKET_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), WEB_RETRIES),
        retry_on_error=RETRYABLE_ERRORS,
        socket_keepalive=True,
    )
    return ArqRedis(pool, job_serializer=job_serializer, job_deserializer=job_deserializer)


def worker_redis(settings: Settings) -> ArqRedis:
    """The worker's pool: retries for ever (backing off up to 1 s), so a restart or a failover pauses a worker
    instead of killing it, in arq's job-finishing and shutdown paths too."""
    pool = _pool(
        settings,
        socket_connect_timeout=2,
        socket_timeout=None,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), -1),
        retry_on_error=RETRYABLE_ERRORS,
        retry_on_timeout=True,
        socket_keepalive=True,
    )
    return ArqRedis(pool, job_serializer=job_serializer, job_deserializer=job_deserializer)


def sync_redis(settings: Settings, timeout_s: float = 2.0) -> redis.Redis:
    """A synchronous client (the claim keeper's thread, the command line), to the same server or primary."""
    kwargs: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if not uses_sentinel(settings):
        return redis.Redis.from_url(settings.redis_url, **kwargs)
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        _sentinels(settings), sentinel_kwargs=_sentinel_kwargs(settings), **_credentials(settings), **kwargs
    )
    client: redis.Redis = sentinel.master_for(settings.redis_sentinel_master)  # type: ignore[no-untyped-call]
    return client


def worker_redis_settings(settings: Settings) -> RedisSettings:
    """Settings for arq's own pool (`arq --check`, and a worker not given a pool): retry for ever."""
    if uses_sentinel(settings):
        credentials = _credentials(settings)
        return RedisSettings(
            host=_sentinels(settings),  # arq takes a list of Sentinels here
            sentinel=True,
            sentinel_master=settings.redis_sentinel_master,
            username=credentials["username"],
            password=credentials["password"],
            database=credentials["db"],
            ssl=credentials["ssl"],
            conn_timeout=2,
            conn_retries=60,
            conn_retry_delay=1,
        )
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    redis_settings.conn_timeout = 2
    redis_settings.conn_retries = 60
    redis_settings.conn_retry_delay = 1
    redis_settings.retry_on_timeout = True
    redis_settings.retry_on_error = RETRYABLE_ERRORS
    # retries=-1: redis-py retries without limit, backing off up to 1 s between tries.
    redis_settings.retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), -1)
    return redis_settings
