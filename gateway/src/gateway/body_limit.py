"""The request body limit of every gateway route (MAX_BODY_BYTES): a 413 in the envelope.

Starlette's own limit (`max_body_size`) answers a too-long Content-Length in plain text, so the gateway
keeps this small one: a declared length over the limit is refused before anything is read or any
route runs (registration and login need no token, so nothing else stands in front of them), and a
body without a length (chunked) is counted as it arrives.

So a declared length over the limit is a 413 even without a valid token; a chunked body is counted
only when a route reads it, after the proxy has checked the token (401 first).
"""

from __future__ import annotations

from shared.envelope import envelope
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = "The request body is too large."


class BodyLimitMiddleware:
    """Pure ASGI, so a streamed response passes untouched."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is None or not declared.isdigit():  # uvicorn refuses a malformed one itself
            await self.app(scope, self._counting(receive), send)
        elif int(declared) > self.max_bytes:
            await envelope(None, status=413, message=TOO_LARGE)(scope, receive, send)
        else:  # the server delivers no more than the length it declared
            await self.app(scope, receive, send)

    def _counting(self, receive: Receive) -> Receive:
        """`receive` that refuses the body once more than the limit has arrived."""
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised where the route reads its body; the envelope's handlers render it.
                    raise HTTPException(413, detail=TOO_LARGE)
            return message

        return counted


def _content_length(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value
    return None
