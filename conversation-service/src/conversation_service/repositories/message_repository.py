"""Queries on ai_message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from shared.models import AIMessage, Model
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_message(
    session: AsyncSession,
    *,
    conversation_id: int,
    role: str,
    content: str,
    input_tokens: int,
    output_tokens: int,
    model_id: int | None,
    model_name: str | None,
) -> AIMessage:
    """Insert one message; `created_at` is the insert's own time, so it follows the written order."""
    statement = (
        insert(AIMessage)
        .values(
            conversation_id=conversation_id,
            role=role,
            content=content,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
            model_id=model_id,
            model_name=model_name,
            created_at=func.clock_timestamp(),
        )
        .returning(AIMessage)
    )
    message = await session.scalar(statement)
    assert message is not None
    return message


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


async def existing_model_id(session: AsyncSession, *, model_id: int) -> int | None:
    """`model_id` if the model still exists (it may have been deleted since the call), else None."""
    return await session.scalar(select(Model.id).where(Model.id == model_id))


async def existing_model_ids(session: AsyncSession, *, model_ids: Iterable[int]) -> set[int]:
    """Which of these models still exist."""
    ids = sorted(set(model_ids))
    return set((await session.scalars(select(Model.id).where(Model.id.in_(ids)))).all())
