"""Queries on ai_message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from shared.models import AIMessage, Model
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_messages(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert many messages in one multi-row INSERT, in the given order (ids and `created_at` ascend
    with it); nothing is read back."""
    table = cast(Table, AIMessage.__table__)
    connection = await session.connection()
    await connection.execute(insert(table).values(created_at=func.clock_timestamp()), rows)


async def list_for_conversation(session: AsyncSession, *, conversation_id: int) -> Sequence[AIMessage]:
    """In the order they were written (ids ascend with every insert)."""
    statement = select(AIMessage).where(AIMessage.conversation_id == conversation_id).order_by(AIMessage.id)
    return (await session.scalars(statement)).all()


async def existing_model_ids(session: AsyncSession, *, model_ids: Iterable[int]) -> set[int]:
    """Which of these models still exist (one may have been deleted since the call)."""
    ids = sorted(set(model_ids))
    return set((await session.scalars(select(Model.id).where(Model.id.in_(ids)))).all())
