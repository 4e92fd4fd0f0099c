"""Redis clients for the web app, the workers and the command line: one server (REDIS_URL) or the primary that
Redis Sentinel names (REDIS_SENTINELS), with timeouts and retries that ride out a restart or a failover."""

import logging
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.sentinel
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, ReadOnlyError, TimeoutError

from service.core.serialization import job_deserializer, job_serializer
from service.settings import Settings

logger = logging.getLogger(__name__)

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
    """What REDIS_URL says beyond host and port, as redis-py reads it: user, password, database, TLS."""
    options = parse_url(settings.redis_url)
    return {
        "username": options.get("username"),
        "password": options.get("password"),
        "db": options.get("db", 0),
        "ssl": options.get("connection_class") is SSLConnection,
    }


def _sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "socket_timeout": SENTINEL_TIMEOUT_S,
        "socket_connect_timeout": SENTINEL_TIMEOUT_S,
        "password": settings.redis_sentinel_password,
    }


def uses_sentinel(settings: Settings) -> bool:
    return bool(settings.redis_sentinels)


class _HandshakeRetried:
    """redis-py (5.3) retries a connection's TCP connect with its `retry`, but not the handshake that follows it
    (HELLO/AUTH/SELECT/CLIENT SETINFO), and a command's own retry does not cover getting its connection: a reset
    after the accept, a server that accepts and never answers, or one answering LOADING killed a worker from
    arq's job-finishing or shutdown path. Here the whole connect, handshake included, is retried the same way."""

    retry: Retry

    async def connect(self) -> None:
        await self.retry.call_with_retry(super().connect, lambda error: self.disconnect())  # type: ignore[misc, attr-defined]


class RetriedConnection(_HandshakeRetried, Connection):
    pass


class RetriedSSLConnection(_HandshakeRetried, SSLConnection):
    pass


class RetriedUnixConnection(_HandshakeRetried, UnixDomainSocketConnection):
    pass


RETRIED = {
    Connection: RetriedConnection,
    SSLConnection: RetriedSSLConnection,
    UnixDomainSocketConnection: RetriedUnixConnection,
}


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


def _pool(settings: Settings, *, retry_handshake: bool = False, **kwargs: Any) -> ConnectionPool:
    if not uses_sentinel(settings):
        options = parse_url(settings.redis_url)  # redis-py's own reading of the URL (scheme, credentials, db, TLS)
        connection_class = options.pop("connection_class", Connection)
        if retry_handshake:
            connection_class = RETRIED[connection_class]
        return ConnectionPool(connection_class=connection_class, **{**kwargs, **options})
    connection = {**_credentials(settings), **kwargs}
    connection["connection_class"] = PrimarySSLConnection if connection.pop("ssl") else PrimaryConnection
    sentinel = Sentinel(_sentinels(settings), sentinel_kwargs=_sentinel_kwargs(settings), **connection)  # type: ignore[no-untyped-call]
    # The pool asks the Sentinels for the primary at each new connection, and drops its connections when the
    # primary has moved (a READONLY answer, or a connection to a demoted server).
    return SentinelConnectionPool(settings.redis_sentinel_master, sentinel, is_master=True, **connection)  # type: ignore[no-untyped-call]


def web_redis(settings: Settings) -> ArqRedis:
    """A lazily connecting client: the app starts while Redis is down, and `/health` says so. A request never
    waits out a fault for long: a connection that fails (its connect or its handshake) is a 503 for that request,
    within the contract's 2 s, and the next request gets a new one."""
    pool = _pool(
        settings,
        socket_connect_timeout=WEB_SOCKET_TIMEOUT,
        socket_timeout=WEB_SOCKET_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), WEB_RETRIES),
        retry_on_error=RETRYABLE_ERRORS,
        socket_keepalive=True,
    )
    return ArqRedis(pool, job_serializer=job_serializer, job_deserializer=job_deserializer)


# A producer process (`service.client`, the command line) waits longer than a request would, and tries again a few
# times: an enqueue is safe to repeat (its job ids are chosen before it is sent), and a batch of thousands of jobs is
# one script call that a loaded server may take a while to answer.
CLIENT_SOCKET_TIMEOUT = 10.0
CLIENT_RETRIES = 3


def client_redis(settings: Settings) -> ArqRedis:
    """A lazily connecting client for the Python client and the command line: Redis refusing connections is a
    `ConnectionError` within about a second (a few tries), one that does not answer a `TimeoutError`."""
    pool = _pool(
        settings,
        socket_connect_timeout=2,
        socket_timeout=CLIENT_SOCKET_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), CLIENT_RETRIES),
        retry_on_error=RETRYABLE_ERRORS,
        socket_keepalive=True,
    )
    return ArqRedis(pool, job_serializer=job_serializer, job_deserializer=job_deserializer)


async def close_redis(client: ArqRedis) -> None:
    """Close the client and its pool; through Sentinel, also the clients to the Sentinels themselves (closing the
    pool alone leaves those open)."""
    pool = client.connection_pool
    await client.aclose(close_connection_pool=True)
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()


# A worker's command that has no answer in this long is tried again on a new connection: a server that accepted
# the connection and never answers (a black hole, a half-open connection) holds a worker no longer than that.
WORKER_SOCKET_TIMEOUT = 10.0


def worker_redis(settings: Settings, socket_timeout: float = WORKER_SOCKET_TIMEOUT) -> ArqRedis:
    """The worker's pool: retries for ever (backing off up to 1 s), so a restart, a reset, a server loading its
    data or a failover pauses a worker instead of killing it, in arq's job-finishing and shutdown paths too."""
    pool = _pool(
        settings,
        retry_handshake=True,
        socket_connect_timeout=2,
        socket_timeout=socket_timeout,
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


class SentinelUnavailable(RuntimeError):
    """No Sentinel answers, or none knows REDIS_SENTINEL_MASTER: said at a worker's start, not waited out."""


def check_sentinels(settings: Settings) -> str:
    """Ask each Sentinel for the primary; the address, or `SentinelUnavailable` saying what is wrong. One Sentinel
    down of several is only logged: the others answer."""
    answered, down = [], []
    for host, port in _sentinels(settings):
        client = redis.Redis(host=host, port=port, **_sentinel_kwargs(settings))
        try:
            address = client.sentinel_get_master_addr_by_name(settings.redis_sentinel_master)  # type: ignore[no-untyped-call]
        except (redis.RedisError, OSError) as e:
            down.append(f"{host}:{port} ({type(e).__name__})")
            continue
        finally:
            client.close()
        answered.append(f"{host}:{port}")
        if address:
            if down:
                logger.warning("REDIS_SENTINELS: %s did not answer; using the others", ", ".join(down))
            host = address[0].decode() if isinstance(address[0], bytes) else address[0]
            return f"{host}:{address[1]}"
    if not answered:
        raise SentinelUnavailable(f"none of REDIS_SENTINELS answers: {', '.join(down)}")
    raise SentinelUnavailable(
        f"no Sentinel of {', '.join(answered)} knows a primary named {settings.redis_sentinel_master!r} "
        "(REDIS_SENTINEL_MASTER), or it has none right now (a failover)"
    )


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
            conn_retries=5,  # `arq --check` through Sentinel: a clear failure within seconds, not a minute
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
