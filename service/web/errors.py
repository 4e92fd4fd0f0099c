"""The one place that turns domain exceptions (`service.core.exceptions`) and Redis failures into `{"detail": ...}`
answers."""

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

from service.core.exceptions import (
    BadCursor,
    IdempotencyKeyReused,
    JobNotFound,
    JobStateConflict,
    NotAuthenticated,
    NotOwner,
    NotReplicated,
    QuotaExceeded,
)
from service.core.webhooks import CallbackRefused

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 2
QUOTA_RETRY_AFTER_S = 5


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # FastAPI's default handler echoes each bad input back; an input of NaN or 1e309 then fails to render as
    # JSON and the client gets a 500. Keep what locates the problem and drop the echo.
    return [{"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _validation_errors(exc)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    # FastAPI answers 400 when a body cannot even be decoded (bytes that are not UTF-8); the contract treats
    # every bad body alike, as 422.
    if exc.status_code == status.HTTP_400_BAD_REQUEST and isinstance(exc.__cause__, ValueError):
        detail = [{"type": "json_invalid", "loc": ["body"], "msg": "the body is not valid UTF-8 JSON"}]
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    response: JSONResponse = await http_exception_handler(request, exc)  # type: ignore[assignment]
    return response


async def _on_not_found(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc) or "job not found"}, status_code=status.HTTP_404_NOT_FOUND)


async def _on_not_authenticated(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotAuthenticated)
    challenge = 'Bearer error="invalid_token"' if exc.invalid else "Bearer"
    return JSONResponse(
        {"detail": str(exc)}, status_code=status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": challenge}
    )


async def _on_not_owner(_: Request, exc: Exception) -> JSONResponse:
    detail = str(exc) or "this job belongs to another user"
    return JSONResponse({"detail": detail, "status": "PROTECTED"}, status_code=status.HTTP_403_FORBIDDEN)


async def _on_not_finished(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc) or "job not finished"}, status_code=status.HTTP_409_CONFLICT)


async def _on_quota(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc)},
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(QUOTA_RETRY_AFTER_S)},
    )


async def _on_bad_cursor(_: Request, exc: Exception) -> JSONResponse:
    detail = [{"type": "value_error", "loc": ["query", "cursor"], "msg": str(exc)}]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _on_idempotency_key_reused(_: Request, exc: Exception) -> JSONResponse:
    # 422, as the IETF Idempotency-Key draft and Stripe answer a key reused with a different request.
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _on_callback_refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CallbackRefused)
    detail = [{"type": "callback_refused", "loc": ["body", *exc.loc], "msg": str(exc)}]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _on_redis_error(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("redis unavailable during %s %s: %r", request.method, request.url.path, exc)
    return queue_unavailable()


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error during %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)


def queue_unavailable() -> JSONResponse:
    return JSONResponse(
        {"detail": "the job queue is unavailable, try again shortly"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(JobNotFound, _on_not_found)
    app.add_exception_handler(NotAuthenticated, _on_not_authenticated)
    app.add_exception_handler(NotOwner, _on_not_owner)
    app.add_exception_handler(JobStateConflict, _on_not_finished)
    app.add_exception_handler(QuotaExceeded, _on_quota)
    app.add_exception_handler(BadCursor, _on_bad_cursor)
    app.add_exception_handler(IdempotencyKeyReused, _on_idempotency_key_reused)
    app.add_exception_handler(CallbackRefused, _on_callback_refused)
    app.add_exception_handler(NotReplicated, _on_redis_error)  # queued on the primary only: retry, same key
    app.add_exception_handler(RedisError, _on_redis_error)
    # Starlette hands an exception raised while Redis hangs up mid-reply here too.
    app.add_exception_handler(ConnectionResetError, _on_redis_error)
    app.add_exception_handler(Exception, _on_unexpected)
