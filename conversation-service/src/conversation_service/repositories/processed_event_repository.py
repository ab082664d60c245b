"""The idempotency record of the completion consumer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from conversation_service.models import ConversationProcessedEvent


async def record(session: AsyncSession, *, event_id: uuid.UUID) -> bool:
    """Claim `event_id` for this transaction; False if it was applied before.

    A concurrent transaction with the same id makes this wait for its outcome (unique index), so two
    consumers can never both apply one event.
    """
    statement = (
        pg_insert(ConversationProcessedEvent)
        .values(event_id=event_id)
        .on_conflict_do_nothing(index_elements=[ConversationProcessedEvent.event_id])
        .returning(ConversationProcessedEvent.event_id)
    )
    return (await session.scalar(statement)) is not None


async def record_many(session: AsyncSession, *, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """`record` for several ids in one statement; the ids that were new (the others were applied before)."""
    if not event_ids:
        return set()
    statement = (
        pg_insert(ConversationProcessedEvent)
        .values([{"event_id": event_id} for event_id in event_ids])
        .on_conflict_do_nothing(index_elements=[ConversationProcessedEvent.event_id])
        .returning(ConversationProcessedEvent.event_id)
    )
    return set((await session.scalars(statement)).all())
