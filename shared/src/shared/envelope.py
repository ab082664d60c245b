"""The ApiResponse envelope every JSON response wears: `{"code", "message", "data"}`."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

SUCCESS = "success"

T = TypeVar("T")


class ApiResponse(BaseModel, Generic[T]):
    """`code` equals the HTTP status; `message` is "success" or one sentence on what was wrong."""

    code: int = 200
    message: str = SUCCESS
    data: T | None = None


def envelope(
    data: Any = None, *, status: int = 200, message: str = SUCCESS, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON response in the envelope; `data` may be pydantic models, lists, decimals or datetimes."""
    body = {"code": status, "message": message, "data": jsonable_encoder(data)}
    return JSONResponse(body, status_code=status, headers=headers)
