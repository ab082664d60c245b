"""The idempotency record of the completion consumer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from conversation_service.models import ConversationProcessedEvent


async def record_many(session: AsyncSession, *, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Claim the event ids for this transaction; the ids that were new (the others were applied before).

    A concurrent transaction claiming the same id makes this wait for its outcome (unique index), so two
    consumers can never both apply one event. Sent as one executemany, which SQLAlchemy batches into
    multi-row INSERTs from a cached statement (a `.values(list)` statement is compiled anew each time).
    """
    if not event_ids:
        return set()
    table = cast(Table, ConversationProcessedEvent.__table__)
    statement = (
        pg_insert(table).on_conflict_do_nothing(index_elements=[table.c.event_id]).returning(table.c.event_id)
    )
    connection = await session.connection()
    result = await connection.execute(statement, [{"event_id": event_id} for event_id in event_ids])
    return set(result.scalars().all())


async def delete_processed_before(session: AsyncSession, *, cutoff: datetime, limit: int) -> int:
    """Forget at most `limit` of the ids applied before `cutoff`; how many were forgotten."""
    table = ConversationProcessedEvent
    oldest = select(table.event_id).where(table.processed_at < cutoff).limit(limit).scalar_subquery()
    result = await session.execute(delete(table).where(table.event_id.in_(oldest)))
    return int(result.rowcount)  # type: ignore[attr-defined]
