"""Errors that carry their HTTP status, and the handlers that render every error in the envelope."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db import TRANSIENT_ERROR_TYPES, is_transient_error
from shared.envelope import envelope

logger = logging.getLogger("shared.errors")

# Sent with every 503 (something this service depends on is unavailable): when a client may try again.
RETRY_LATER = {"Retry-After": "5"}

_DEFAULT_MESSAGES = {
    400: "The request is not valid.",
    401: "Authentication is required.",
    403: "You are not allowed to do this.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    413: "The request body is too large.",
    422: "The request has invalid fields.",
    429: "Too many requests, please try again later.",
    500: "Internal server error.",
    502: "The upstream service failed.",
    503: "The service is unavailable, please try again later.",
    504: "The upstream service timed out.",
}


class AppError(Exception):
    """An error with a status and a one-sentence message that is safe to show the caller."""

    def __init__(self, status: int, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.status = status
        self.message = message or _DEFAULT_MESSAGES.get(status, "The request failed.")
        self.headers = RETRY_LATER if headers is None and status == 503 else headers
        super().__init__(self.message)


class NotFound(AppError):
    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(404, message)


class Unauthorized(AppError):
    def __init__(self, message: str = "Authentication is required.") -> None:
        super().__init__(401, message, headers={"WWW-Authenticate": "Bearer"})


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Only `loc` and `msg`: the raw input may hold a password or a key and is never echoed."""
    return [{"loc": list(err.get("loc", ())), "msg": _plain(err.get("msg", ""))} for err in exc.errors()]


def _plain(message: object) -> str:
    """Pydantic's message without the "Value error, " it puts before a validator's own words."""
    return str(message).removeprefix("Value error, ")


# Where a request's input came from: the first part of a validation error's `loc`, not a field name.
_SOURCES = ("body", "query", "path", "header", "cookie")


def _validation_message(exc: RequestValidationError) -> str:
    """Names the first wrong field; a body that is not JSON at all says so (its `loc` holds a character
    offset, not a field)."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error")
        offset = next((part for part in first.get("loc", ()) if isinstance(part, int)), None)
        where = f" at character {offset}" if offset is not None else ""
        return f"The request body is not valid JSON{where}" + (f": {detail}." if detail else ".")
    loc = list(first.get("loc", ()))
    source = loc.pop(0) if loc and loc[0] in _SOURCES else "body"
    where = ".".join(str(part) for part in loc) or source
    return f"Invalid field {where}: {_plain(first.get('msg', 'invalid'))}."


def install_error_handlers(app: FastAPI) -> None:
    """Render 4xx/5xx of every origin (ours, Starlette's routing, validation, crashes) in the envelope."""

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return envelope(None, status=exc.status, message=exc.message, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = _DEFAULT_MESSAGES.get(exc.status_code, "The request failed.")
        if isinstance(exc.detail, str) and exc.detail and exc.status_code not in (404, 405, 500):
            message = exc.detail
        headers = dict(exc.headers) if exc.headers else None
        return envelope(None, status=exc.status_code, message=message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(_field_errors(exc), status=422, message=_validation_message(exc))

    async def _outage(request: Request, exc: Exception) -> JSONResponse:
        """The database unreachable or overloaded: a 503 to try again later, not a bug. Anything else of
        these types goes on to `_unexpected`."""
        if not is_transient_error(exc):
            raise exc
        # PostgreSQL's code tells an outage from a misconfiguration (3D000: no such database).
        sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
        reason = type(exc).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
        logger.error("a dependency is unavailable on %s %s: %s", request.method, request.url.path, reason)
        return envelope(None, status=503, message=_DEFAULT_MESSAGES[503], headers=RETRY_LATER)

    for kind in TRANSIENT_ERROR_TYPES:
        app.add_exception_handler(kind, _outage)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope(None, status=500, message=_DEFAULT_MESSAGES[500])
