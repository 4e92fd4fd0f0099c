"""ASGI middleware: refuse a declared oversize body with the contract's JSON 413 before reading any of it."""

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class DeclaredBodyLimit:
    """FastAPI's `max_body_size` catches bodies that grow too large as they stream (and answers with our JSON
    handlers), but a request that declares an oversize Content-Length gets Starlette's plain-text 413 from it.
    This answers that case first, as `{"detail": ...}`."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if value.isdigit() and int(value) > self.max_body_size:
                        response = JSONResponse({"detail": "request body too large"}, status_code=413)
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)
