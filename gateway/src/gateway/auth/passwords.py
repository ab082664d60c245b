"""Argon2 off the event loop: each hash costs tens of milliseconds of CPU and 64 MiB of memory."""

from __future__ import annotations

import anyio
from shared.security import hash_password, verify_password


class PasswordHashing:
    """Runs hashing in worker threads, a few at a time, so logins neither block the loop nor pile up memory."""

    def __init__(self, *, concurrency: int) -> None:
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(hash_password, password, limiter=self._limiter)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Same cost whether or not there is a hash (an unknown user), see `shared.security`."""
        return await anyio.to_thread.run_sync(verify_password, password, password_hash, limiter=self._limiter)
