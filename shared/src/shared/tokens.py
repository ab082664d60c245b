"""Signed tokens: the users' access tokens (JWT_SECRET) and service-to-service credentials (INTERNAL_SECRET).

Both are HS256 JWTs. Decoding accepts HS256 only, so `none` and every other algorithm are refused, and
requires `exp`, `iat` and `sub`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 - a header name
_INTERNAL_ISSUER = "aigcspace-internal"


class InvalidToken(Exception):
    """The token is missing, malformed, expired, wrongly signed or of the wrong kind."""


def create_access_token(*, secret: str, user_id: int, expires_in: int) -> str:
    """A user's bearer token for the public API."""
    now = int(time.time())
    claims = {"sub": str(user_id), "iat": now, "exp": now + expires_in, "typ": "access"}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


@dataclass(frozen=True)
class AccessToken:
    """What a valid access token says: whose it is and until when (Unix time)."""

    user_id: int
    expires_at: float


def decode_access_token(token: str, *, secret: str) -> AccessToken:
    """The user and expiry of a valid access token; `InvalidToken` otherwise.

    Claims beyond `sub`, `iat` and `exp` are allowed (CONTRACT: "at least") and not checked, `aud`
    included; only an internal credential is refused, should one ever be signed with JWT_SECRET."""
    claims = _decode(token, secret, verify_audience=False)
    if claims.get("iss") == _INTERNAL_ISSUER:
        raise InvalidToken("an internal credential is not an access token")
    expires_at = claims["exp"]
    if not isinstance(expires_at, int | float):  # PyJWT only checked that int() takes it
        raise InvalidToken("exp is not a number")
    return AccessToken(user_id=_user_id(claims), expires_at=float(expires_at))


@dataclass(frozen=True)
class InternalIdentity:
    """Who an internal call acts for, as the calling service vouched."""

    user_id: int
    caller: str


def create_internal_token(*, secret: str, user_id: int, audience: str, caller: str, ttl: int = 60) -> str:
    """A short-lived credential naming the user and the one service it is valid for."""
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "aud": audience,
        "iss": _INTERNAL_ISSUER,
        "caller": caller,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class InternalTokens:
    """The credentials one service sends another, each reused while more than half its lifetime is left
    (signing one per call costs CPU on every request; the receiver still sees at least ttl/2 to go)."""

    MAX_REMEMBERED = 10_000  # users; beyond it the cache starts over

    def __init__(self, *, secret: str, audience: str, caller: str, ttl: int) -> None:
        self._secret = secret
        self.audience = audience
        self.caller = caller
        self.ttl = ttl
        self._issued: dict[int, tuple[str, float]] = {}

    def for_user(self, user_id: int) -> str:
        now = time.monotonic()
        cached = self._issued.get(user_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        token = create_internal_token(
            secret=self._secret, user_id=user_id, audience=self.audience, caller=self.caller, ttl=self.ttl
        )
        if len(self._issued) >= self.MAX_REMEMBERED:
            self._issued.clear()
        self._issued[user_id] = (token, now + self.ttl / 2)
        return token


def decode_internal_token(token: str, *, secret: str, audience: str) -> InternalIdentity:
    """Check an internal credential was signed with INTERNAL_SECRET for this very service."""
    claims = _decode(token, secret, verify_audience=True, audience=audience, issuer=_INTERNAL_ISSUER)
    return InternalIdentity(user_id=_user_id(claims), caller=str(claims.get("caller", "")))


def _decode(token: str, secret: str, *, verify_audience: bool, **checks: str) -> dict[str, object]:
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub"], "verify_aud": verify_audience},
            **checks,  # type: ignore[arg-type]
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc


_USER_ID = re.compile(r"[1-9][0-9]{0,18}")
_MAX_USER_ID = 2**63 - 1  # ids are bigint


def _user_id(claims: dict[str, object]) -> int:
    """`sub` as the id it was issued for: ASCII digits, no sign or leading zero, within bigint."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _USER_ID.fullmatch(sub) or int(sub) > _MAX_USER_ID:
        raise InvalidToken("sub is not a user id")
    return int(sub)
