"""What registration and login accept and return."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"
_USERNAME = re.compile(USERNAME_PATTERN)


def could_be_username(name: str) -> bool:
    """Whether registration accepts `name`: any other name belongs to no one (and may hold a NUL,
    which the database would refuse)."""
    return _USERNAME.fullmatch(name) is not None


class RegisterRequest(BaseModel):
    """A new account: the name is shown to no one else but must be unique."""

    username: str = Field(min_length=3, max_length=64, pattern=USERNAME_PATTERN)
    password: str = Field(min_length=8, max_length=128)


class LoginRequest(BaseModel):
    """Credentials; bounded so that nobody makes the server hash a megabyte."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class TokenResponse(BaseModel):
    """A bearer token for `Authorization: Bearer <access_token>`, valid for `expires_in` seconds."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name
    expires_in: int
