"""JSON (never pickle) encoding of arq's job and result records, shared by the web app and the workers."""

from typing import Any

import orjson

from service.core.failures import public_error


def _encode_fallback(value: Any) -> Any:
    # arq stores a failed job's exception as its result; keep only what a client may see.
    if isinstance(value, BaseException):
        return public_error(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def job_serializer(value: Any) -> bytes:
    """Serialize a job definition or result for Redis."""
    return orjson.dumps(value, default=_encode_fallback)


def job_deserializer(data: bytes) -> Any:
    """Deserialize what `job_serializer` wrote; anything else (a planted pickle) raises, and never runs."""
    return orjson.loads(data)
