"""Reads of the users table (owned by the gateway): only the encrypted DashScope key."""

from __future__ import annotations

from shared.models import User
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession


async def get_encrypted_apikey(session: AsyncSession, user_id: int) -> str | None:
    """The user's DashScope key as stored (encrypted), or None when unset or no such user."""
    return await session.scalar(select(User.apikey).where(User.id == user_id))
