"""What the users API accepts and returns; the key itself is never in a response."""

from __future__ import annotations

from pydantic import BaseModel, Field
from shared.schemas import Timestamp


class UserResponse(BaseModel):
    """The caller as the API shows them: whether a key is set, and only a hint of it."""

    id: int
    username: str
    has_apikey: bool
    apikey_hint: str | None
    created_at: Timestamp


class ApiKeyUpdate(BaseModel):
    """The caller's own DashScope key, stored as given (DashScope is not asked to check it)."""

    apikey: str = Field(min_length=1, max_length=256)
