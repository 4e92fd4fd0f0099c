"""Redis clients for the web app and the workers, with timeouts and retries that ride out a restart."""

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from service.core.serialization import job_deserializer, job_serializer
from service.settings import Settings

# The web app answers 503 rather than hang: two tries of at most 0.8 s each stay within the contract's 2 s.
WEB_SOCKET_TIMEOUT = 0.8
WEB_RETRIES = 1
# OSError too: a refused connect (the server is restarting) surfaces as the builtin ConnectionRefusedError, and
# redis-py's connect() retries only the errors listed here. Without it a worker dies on its first command
# during an outage instead of waiting it out.
RETRYABLE_ERRORS: list[type[Exception]] = [ConnectionError, TimeoutError, OSError]


def web_redis(settings: Settings) -> ArqRedis:
    """A lazily connecting client: the app starts while Redis is down, and `/health` says so."""
    pool = ConnectionPool.from_url(
        settings.redis_url,
        socket_connect_timeout=WEB_SOCKET_TIMEOUT,
        socket_timeout=WEB_SOCKET_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), WEB_RETRIES),
        retry_on_error=RETRYABLE_ERRORS,
        socket_keepalive=True,
    )
    return ArqRedis(pool, job_serializer=job_serializer, job_deserializer=job_deserializer)


def worker_redis_settings(settings: Settings) -> RedisSettings:
    """Settings for arq's own pool: retry for ever, so a Redis restart pauses a worker instead of killing it."""
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    redis_settings.conn_timeout = 2
    redis_settings.conn_retries = 60
    redis_settings.conn_retry_delay = 1
    redis_settings.retry_on_timeout = True
    redis_settings.retry_on_error = RETRYABLE_ERRORS
    # retries=-1: redis-py retries without limit, backing off up to 1 s between tries.
    redis_settings.retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), -1)
    return redis_settings
