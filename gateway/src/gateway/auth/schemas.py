"""What registration and login accept and return."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"
_USERNAME = re.compile(USERNAME_PATTERN)
PASSWORD_MIN_CHARS, PASSWORD_MAX_CHARS = 8, 128


def could_be_username(name: str) -> bool:
    """Whether registration accepts `name`: any other name belongs to no one (and may hold a NUL,
    which the database would refuse)."""
    return _USERNAME.fullmatch(name) is not None


def could_be_password(password: str) -> bool:
    """Whether registration accepts `password`: any other is nobody's (and is not worth hashing)."""
    return PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS


class RegisterRequest(BaseModel):
    """A new account: the name is shown to no one else but must be unique."""

    username: str = Field(min_length=3, max_length=64, pattern=USERNAME_PATTERN)
    password: str = Field(min_length=PASSWORD_MIN_CHARS, max_length=PASSWORD_MAX_CHARS)


class LoginRequest(BaseModel):
    """Credentials. Any strings: a name or password registration would refuse is wrong like any other
    (a 401, CONTRACT §2), and is refused without being hashed (`could_be_password`)."""

    username: str
    password: str


class TokenResponse(BaseModel):
    """A bearer token for `Authorization: Bearer <access_token>`, valid for `expires_in` seconds."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name
    expires_in: int
