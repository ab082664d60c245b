"""Queries on llm_outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from shared.events import CompletionEvent
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from llm_service.models import OutboxEntry


async def add(session: AsyncSession, events: Sequence[CompletionEvent]) -> None:
    """Keep events for the relay, as their JSON, in this order. An event kept already is not kept twice: a
    write is retried when it seemed to fail, and its commit may have gone through all the same."""
    statement = pg_insert(OutboxEntry).on_conflict_do_nothing(index_elements=[OutboxEntry.event_id])
    await session.execute(
        statement,
        [{"event_id": event.event_id, "payload": event.model_dump(mode="json")} for event in events],
    )


async def claim_unpublished(session: AsyncSession, *, limit: int) -> Sequence[OutboxEntry]:
    """The oldest unpublished rows, locked for this transaction; rows another relay holds are skipped, so
    relays side by side never publish a row twice."""
    statement = (
        select(OutboxEntry)
        .where(OutboxEntry.published_at.is_(None))
        .order_by(OutboxEntry.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(statement)).all()


async def mark_published(session: AsyncSession, ids: Sequence[int]) -> None:
    """One UPDATE for a whole pass, not one per row."""
    await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.id.in_(ids))
        .values(published_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )


async def delete_published_before(session: AsyncSession, cutoff: datetime) -> None:
    await session.execute(delete(OutboxEntry).where(OutboxEntry.published_at < cutoff))
