"""Configuration from the environment: the contract's variables, read once per process."""

import logging
import math
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger(__name__)

# `make run` starts its private server here when REDIS_URL is unset, so a worker started by hand in a
# second terminal finds the same server without any configuration. Never the machine's own 6379.
DEV_REDIS_PORT = 6390
DEV_REDIS_URL = f"redis://127.0.0.1:{DEV_REDIS_PORT}/0"
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0000000000"


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_comma_separated)]


class Settings(BaseSettings):
    """Everything the web app, the workers and the token command read from the environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    redis_url: str = DEV_REDIS_URL
    # Redis Sentinel instead of one server: `host:port,...` of the Sentinels and the name they monitor. REDIS_URL's
    # host and port are then ignored; its user, password, database and scheme (rediss: TLS) still apply.
    redis_sentinels: CommaList = []
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: str | None = None  # the Sentinels' own password, if they have one
    # Before an enqueue answers 2xx, wait until this many replicas have it (WAIT), for at most ENQUEUE_WAIT_MS;
    # fewer in time: 503, and the client retries with its Idempotency-Key. 0: answer at once (docs/operations.md).
    enqueue_replicas: Annotated[int, Field(ge=0, le=16)] = 0
    enqueue_wait_ms: Annotated[int, Field(ge=1, le=60_000)] = 500
    data_dir: Path = Path("data")
    sleep_scale: Annotated[float, Field(ge=0), AfterValidator(_finite)] = 1.0
    # Multiplies every retry's back-off (a kind's declared Backoff, a webhook's). Not SLEEP_SCALE, which shortens
    # only the demo kinds' simulated work: 1 in production; a test suite may shrink the waits with it.
    retry_backoff_scale: Annotated[float, Field(ge=0), AfterValidator(_finite)] = 1.0
    secret_key: str = DEV_SECRET_KEY
    max_active_jobs_per_user: Annotated[int, Field(ge=1)] = 100
    # How long results (and the report files they point to) are kept after a job ends, in seconds.
    result_ttl: Annotated[int, Field(ge=1)] = 3600
    # How long a job that ended FAILURE stays readable, listed and retryable (its result, record and index entries).
    failed_ttl: Annotated[int, Field(ge=1)] = 7 * 24 * 3600
    # On SIGTERM a worker takes no new jobs and gives running ones this long to finish; the rest are cancelled
    # and requeued. Keep it below the orchestrator's kill deadline (compose.yaml: stop_grace_period 60 s).
    shutdown_grace_s: Annotated[int, Field(ge=0)] = 50
    # Where each worker process on this host marks, every second from its event loop, that it is alive (read by
    # `python -m service check`, a container's probe). Local to the host: not shared between containers.
    worker_check_dir: Path = Path(tempfile.gettempdir()) / "fastapi-arq-jobs-workers"
    # The queues this worker takes jobs from, in priority order; empty: every queue a kind names.
    worker_queues: CommaList = []
    # Modules of job kinds beyond the ones this service ships with (`service.kinds.KIND_MODULES`).
    job_kinds: CommaList = []
    # Webhooks (`callback_url` on POST /jobs): the hosts that may be called (`host`, `host:port`, or a network such
    # as `10.0.0.0/8` that a listed name may resolve into; default none: every callback_url is refused), and the key
    # of each delivery's `X-Signature` HMAC (a callback_url is refused while it is unset).
    webhook_allowed_hosts: CommaList = []
    webhook_secret: str | None = None
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    # OpenTelemetry (the `otel` extra): with an endpoint, traces go there over OTLP/HTTP (protobuf); unset, none are
    # made. The service name defaults to fastapi-arq-jobs-web and fastapi-arq-jobs-worker.
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str | None = None

    @model_validator(mode="after")
    def _warn_dev_secret(self) -> Self:
        if self.secret_key == DEV_SECRET_KEY:
            logger.warning("SECRET_KEY is not set: using the development key; tokens are forgeable")
        return self

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def notifications_log(self) -> Path:
        return self.data_dir / "notifications.log"


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()
