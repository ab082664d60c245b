"""The consumer's idempotency records are forgotten after the retention, not before."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from conversation_service.repositories import processed_event_repository
from shared.db import create_engine, create_session_factory, unit_of_work
from sqlalchemy import text

from testkit import ScratchDatabase

AGE = text(
    "UPDATE conversation_processed_event SET processed_at = now() - CAST(:age AS interval) WHERE event_id = :event_id"
)


async def _forget_before(url: str, cutoff: datetime, ages: dict[uuid.UUID, timedelta]) -> set[uuid.UUID]:
    engine = create_engine(url, pool_size=1)
    sessions = create_session_factory(engine)
    try:
        async with unit_of_work(sessions) as session:
            await processed_event_repository.record_many(session, event_ids=list(ages))
        async with unit_of_work(sessions) as session:
            for event_id, age in ages.items():
                await session.execute(AGE, {"age": age, "event_id": event_id})
        async with unit_of_work(sessions) as session:
            await processed_event_repository.delete_processed_before(session, cutoff=cutoff, limit=100)
        async with unit_of_work(sessions) as session:
            return await processed_event_repository.record_many(session, event_ids=list(ages))
    finally:
        await engine.dispose()


def test_ids_older_than_the_cutoff_are_forgotten_and_the_rest_kept(database: ScratchDatabase) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()
    ages = {old: timedelta(days=31), recent: timedelta(days=29)}
    cutoff = datetime.now(UTC) - timedelta(days=30)
    # record_many returns the ids it could claim anew: only a forgotten one can be claimed again.
    assert asyncio.run(_forget_before(database.url, cutoff, ages)) == {old}
