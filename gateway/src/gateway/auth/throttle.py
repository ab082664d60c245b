"""Refusing a username after too many failed logins, so its password cannot be guessed at speed.

Attempts are counted per username in Redis (shared by every gateway instance) before the password is
checked, in a window that starts with the first; a successful login clears the count, so what is
counted are the failures since. Beyond the limit the name is refused with a 429 until the window ends,
whether the password is then right or not. Names that do not exist are counted
alike, so the answer never tells which names are taken. Off (`LOGIN_MAX_FAILURES=0`) in the dev run, as
CONTRACT.md has every rate limit.

Redis being unreachable lets logins through (logged): an outage must not lock every user out.
"""

from __future__ import annotations

import hashlib
import logging
import math

from redis.asyncio import Redis
from redis.exceptions import RedisError
from shared.errors import AppError

logger = logging.getLogger("gateway.auth.throttle")

_KEY_PREFIX = "aigcspace:login-failures:"


class TooManyFailedLogins(AppError):
    def __init__(self, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            429,
            f"Too many failed logins for this username: try again in {minutes} minute{'s' if minutes > 1 else ''}.",
            headers={"Retry-After": str(retry_after)},
        )


class LoginThrottle:
    """Counts failed logins per username; `max_failures` 0 turns it off."""

    def __init__(self, redis: Redis, *, max_failures: int, window_seconds: int) -> None:
        self._redis = redis
        self.max_failures = max_failures
        self.window_seconds = window_seconds

    @staticmethod
    def _key(username: str) -> str:
        # hashed: any string may be sent as a name, and Redis keys need not hold people's names
        return _KEY_PREFIX + hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()

    async def attempt(self, username: str) -> None:
        """Count a login of this name before its password is checked (so that guesses sent in parallel
        are counted too); `TooManyFailedLogins` once the name has had `max_failures` attempts in its
        window without a right password."""
        if not self.max_failures:
            return
        key = self._key(username)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window_seconds, nx=True)  # the window starts with the first
                pipe.ttl(key)
                attempts, _, ttl = await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning("login throttle unavailable, login allowed", extra={"error": type(exc).__name__})
            return
        if int(attempts) > self.max_failures:
            raise TooManyFailedLogins(retry_after=ttl if ttl and ttl > 0 else self.window_seconds)

    async def succeeded(self, username: str) -> None:
        """A right password: the name starts afresh."""
        if not self.max_failures:
            return
        try:
            await self._redis.delete(self._key(username))
        except (RedisError, OSError) as exc:
            logger.warning(
                "login throttle unavailable, count not cleared", extra={"error": type(exc).__name__}
            )
