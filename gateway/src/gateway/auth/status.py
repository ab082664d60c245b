"""Whether a token's user still exists and is active, for proxied calls: one query per user a moment."""

from __future__ import annotations

import asyncio
import time

from shared.db import SessionFactory, unit_of_work

from gateway.users.repository import UserRepository

_MAX_REMEMBERED = 100_000


class ActiveUsers:
    """Remembers users found active for `ttl` seconds; refusals are never remembered.

    A proxied stream is the hot path (thousands at once): a short memory spares the database one query
    per call, at the price of a deactivated user keeping access for at most `ttl` seconds. Calls that
    arrive together for the same user share one query instead of queueing for the connection pool.
    """

    def __init__(self, *, ttl: float) -> None:
        self._ttl = ttl
        self._until: dict[int, float] = {}
        self._pending: dict[int, asyncio.Future[bool]] = {}
        self._session_factory: SessionFactory | None = None

    def bind(self, session_factory: SessionFactory) -> None:
        """Use the app's sessions (they exist once the app has started)."""
        self._session_factory = session_factory

    async def is_active(self, user_id: int) -> bool:
        if self._until.get(user_id, 0.0) > time.monotonic():
            return True
        pending = self._pending.get(user_id)
        if pending is None:
            pending = asyncio.ensure_future(self._ask(user_id))
            self._pending[user_id] = pending
            pending.add_done_callback(lambda done: self._settle(user_id, done))
        # Shielded: a caller that leaves must not cancel the query the others wait for.
        return await asyncio.shield(pending)

    async def _ask(self, user_id: int) -> bool:
        if self._session_factory is None:
            raise RuntimeError("ActiveUsers is not bound to a session factory")
        # A database outage here is answered like anywhere else (`shared.errors`: 503, Retry-After).
        async with unit_of_work(self._session_factory) as session:
            active = await UserRepository(session).is_active(user_id)
        if active and self._ttl > 0:
            if len(self._until) >= _MAX_REMEMBERED:
                self._until.clear()
            self._until[user_id] = time.monotonic() + self._ttl
        else:
            self._until.pop(user_id, None)
        return active

    def _settle(self, user_id: int, done: asyncio.Future[bool]) -> None:
        self._pending.pop(user_id, None)
        if not done.cancelled():
            done.exception()  # retrieved here so an unawaited failure is not reported as lost
