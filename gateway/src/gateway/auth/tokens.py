"""Reading the caller's bearer token: the one check every /api route but register and login makes."""

from __future__ import annotations

import time

from shared.errors import Unauthorized
from shared.tokens import InvalidToken, decode_access_token

MISSING_TOKEN = "Authentication is required: send Authorization: Bearer <access_token>."  # noqa: S105 - a message
INVALID_TOKEN = "The access token is invalid or has expired."  # noqa: S105 - a message
_MAX_REMEMBERED = 10_000


class AccessTokens:
    """Checks bearer tokens, remembering each verified token until its `exp`.

    A client sends the same token with every call, and checking an HS256 signature costs more than
    the rest of a proxied call's own work; the memory keeps a repeat check to a dictionary lookup.
    Only tokens that passed the full check (HS256 only; `exp`, `iat`, `sub`) are remembered.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._verified: dict[str, tuple[int, float]] = {}

    def user_id(self, authorization: str | None) -> int:
        """The user id a valid `Authorization: Bearer` header names; `Unauthorized` otherwise."""
        if not authorization:
            raise Unauthorized(MISSING_TOKEN)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(INVALID_TOKEN)
        remembered = self._verified.get(token)
        if remembered is not None:
            user_id, expires_at = remembered
            if time.time() < expires_at:
                return user_id
            del self._verified[token]
        try:
            verified = decode_access_token(token, secret=self._secret)
        except InvalidToken as exc:
            raise Unauthorized(INVALID_TOKEN) from exc
        if len(self._verified) >= _MAX_REMEMBERED:
            self._verified.clear()
        self._verified[token] = (verified.user_id, verified.expires_at)
        return verified.user_id
