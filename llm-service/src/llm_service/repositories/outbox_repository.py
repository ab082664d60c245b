"""Queries on llm_outbox."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

from shared.events import CompletionEvent
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from llm_service.models import OutboxEntry


async def add(session: AsyncSession, events: Sequence[CompletionEvent]) -> None:
    """Keep events for the relay, as their JSON, in this order. An event kept already is not kept twice: a
    write is retried when it seemed to fail, and its commit may have gone through all the same. An event
    kept in flight (its stream's last checkpoint) becomes this one, in one statement, and takes its place
    at the end of the order (a new id), as if it were inserted now."""
    statement = pg_insert(OutboxEntry)
    statement = statement.on_conflict_do_update(
        index_elements=[OutboxEntry.event_id],
        set_={"id": statement.excluded.id, "payload": statement.excluded.payload, "lease_until": None},
        where=OutboxEntry.lease_until.is_not(None) & OutboxEntry.published_at.is_(None),
    )
    await session.execute(
        statement,
        [{"event_id": event.event_id, "payload": event.model_dump(mode="json")} for event in events],
    )


async def claim_unpublished(
    session: AsyncSession, *, limit: int, alive: Collection[uuid.UUID] = ()
) -> Sequence[OutboxEntry]:
    """The oldest unpublished rows, locked for this transaction; rows another relay holds are skipped, so
    relays side by side never publish a row twice. A stream's row in flight is left alone while its lease
    runs; once it expired (its process died), it is published like any other, unless its event is one
    of `alive` (this process's: its lease ran out while the database was away, and its own final event
    is still to come)."""
    expired = OutboxEntry.lease_until < func.now()
    if alive:
        expired &= OutboxEntry.event_id.not_in(list(alive))
    statement = (
        select(OutboxEntry)
        .where(OutboxEntry.published_at.is_(None))
        .where(or_(OutboxEntry.lease_until.is_(None), expired))
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


async def keep_in_flight(session: AsyncSession, event: CompletionEvent, *, lease: timedelta) -> None:
    """A running stream's event as it stands, under a lease (the database's clock, the one the relay
    reads): written whole each time, so a first write that failed is made good by the next. Never over a
    row that is no longer in flight: the final event in its place, or a checkpoint already published."""
    statement = pg_insert(OutboxEntry).values(
        event_id=event.event_id, payload=event.model_dump(mode="json"), lease_until=func.now() + lease
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[OutboxEntry.event_id],
            set_={"payload": statement.excluded.payload, "lease_until": statement.excluded.lease_until},
            where=OutboxEntry.lease_until.is_not(None) & OutboxEntry.published_at.is_(None),
        )
    )


async def forget_in_flight(session: AsyncSession, event_id: uuid.UUID) -> None:
    """The stream's row in flight, once its final event was recorded (a final one in its place stays)."""
    await session.execute(
        delete(OutboxEntry)
        .where(
            OutboxEntry.event_id == event_id,
            OutboxEntry.lease_until.is_not(None),
            OutboxEntry.published_at.is_(None),
        )
        .execution_options(synchronize_session=False)
    )
