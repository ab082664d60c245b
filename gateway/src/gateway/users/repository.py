"""Queries on `users`, the table the gateway owns."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.models import User
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession


class UserRepository:
    """Reads and writes users within the caller's transaction; it flushes, never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_username(self, username: str) -> User | None:
        return await self.session.scalar(select(User).where(User.username == username))

    async def username_taken(self, username: str) -> bool:
        found = await self.session.scalar(select(User.id).where(User.username == username))
        return found is not None

    async def add(self, *, username: str, password_hash: str) -> User:
        """Insert and return the row with its database defaults; IntegrityError when the name is taken."""
        statement = insert(User).values(username=username, password_hash=password_hash).returning(User)
        return (await self.session.scalars(statement)).one()

    async def set_apikey(self, user: User, encrypted: str | None) -> None:
        user.apikey = encrypted
        user.updated_at = datetime.now(UTC)
        await self.session.flush()

    async def is_active(self, user_id: int) -> bool:
        """True only for an existing, active user."""
        active = await self.session.scalar(select(User.is_active).where(User.id == user_id))
        return bool(active)
