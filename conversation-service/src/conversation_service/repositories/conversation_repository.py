"""Queries on ai_conversation. Every read or write a user makes is filtered by owner here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from shared.models import AIConversation
from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_conversation(session: AsyncSession, *, user_id: int, title: str) -> AIConversation:
    """Insert and return the row with its database defaults (id, totals, times) in one round trip."""
    statement = insert(AIConversation).values(user_id=user_id, title=title).returning(AIConversation)
    conversation = await session.scalar(statement)
    assert conversation is not None
    return conversation


async def get_owned(session: AsyncSession, *, conversation_id: int, user_id: int) -> AIConversation | None:
    statement = select(AIConversation).where(
        AIConversation.id == conversation_id, AIConversation.user_id == user_id
    )
    return await session.scalar(statement)


async def list_owned(
    session: AsyncSession, *, user_id: int, limit: int, offset: int
) -> Sequence[AIConversation]:
    """Newest `updated_at` first, ties by id (the index ix_ai_conversation_user_id_updated_at)."""
    statement = (
        select(AIConversation)
        .where(AIConversation.user_id == user_id)
        .order_by(AIConversation.updated_at.desc(), AIConversation.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return (await session.scalars(statement)).all()


async def count_owned(session: AsyncSession, *, user_id: int) -> int:
    statement = select(func.count()).select_from(AIConversation).where(AIConversation.user_id == user_id)
    return int(await session.scalar(statement) or 0)


async def update_title(
    session: AsyncSession, *, conversation_id: int, user_id: int, title: str
) -> AIConversation | None:
    statement = (
        update(AIConversation)
        .where(AIConversation.id == conversation_id, AIConversation.user_id == user_id)
        .values(title=title, updated_at=func.now())
        .returning(AIConversation)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    return await session.scalar(statement)


async def delete_owned(session: AsyncSession, *, conversation_id: int, user_id: int) -> bool:
    """Delete the row; its messages go by the foreign key's ON DELETE CASCADE."""
    statement = (
        delete(AIConversation)
        .where(AIConversation.id == conversation_id, AIConversation.user_id == user_id)
        .returning(AIConversation.id)
        .execution_options(synchronize_session=False)
    )
    return (await session.scalar(statement)) is not None


async def add_tokens_many(session: AsyncSession, *, deltas: dict[int, tuple[int, int]]) -> None:
    """Add to several conversations' totals in SQL (no read-modify-write) and move `updated_at`: one
    executemany, in id order."""
    if not deltas:
        return
    table = cast(Table, AIConversation.__table__)
    statement = (
        update(table)
        .where(table.c.id == bindparam("cid"))
        .values(
            total_input_tokens=table.c.total_input_tokens + bindparam("d_in"),
            total_output_tokens=table.c.total_output_tokens + bindparam("d_out"),
            total_tokens=table.c.total_tokens + bindparam("d_in") + bindparam("d_out"),
            updated_at=func.clock_timestamp(),
        )
    )
    params = [{"cid": cid, "d_in": d[0], "d_out": d[1]} for cid, d in sorted(deltas.items())]
    connection = await session.connection()
    await connection.execute(statement, params)
