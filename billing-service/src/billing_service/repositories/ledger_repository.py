"""Queries on billing_ledger and on the one column of ai_conversation billing-service owns (`bill`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from shared.models import AIConversation
from sqlalchemy import Date, Row, Table, func, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.models import BillingLedger


async def insert_lines(session: AsyncSession, lines: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Add several ledger lines; the event ids that were new (a line whose `event_id` is billed already is
    not written). Sent as one executemany, which SQLAlchemy batches into multi-row INSERTs from a cached
    statement (a `.values(list)` statement is compiled anew each time)."""
    if not lines:
        return set()
    table = cast(Table, BillingLedger.__table__)
    statement = (
        pg_insert(table).on_conflict_do_nothing(index_elements=[table.c.event_id]).returning(table.c.event_id)
    )
    connection = await session.connection()
    return set((await connection.execute(statement, lines)).scalars().all())


async def set_bills_from_ledger(session: AsyncSession, *, conversation_ids: Sequence[int]) -> None:
    """Each (locked) conversation's `bill` := the exact sum of its owner's costs rounded half-up to 4
    places (ROUND on numeric rounds half away from zero, which is half-up for costs ≥ 0). One statement,
    run after the locks, so under READ COMMITTED it sees every committed line.

    Only the owner's lines: an event naming someone else's conversation is billed to its own user (their
    usage) but is no call of this conversation."""
    if not conversation_ids:
        return
    sums = (
        select(BillingLedger.conversation_id, func.sum(BillingLedger.cost).label("exact_sum"))
        .join(AIConversation, AIConversation.id == BillingLedger.conversation_id)
        .where(
            BillingLedger.conversation_id.in_(sorted(set(conversation_ids))),
            BillingLedger.user_id == AIConversation.user_id,
        )
        .group_by(BillingLedger.conversation_id)
        .subquery()
    )
    statement = (
        update(AIConversation)
        .where(AIConversation.id == sums.c.conversation_id)
        .values(bill=func.round(sums.c.exact_sum, 4))
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)


def _sums() -> tuple[Any, ...]:
    return (
        func.coalesce(func.sum(BillingLedger.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(BillingLedger.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(BillingLedger.cost), 0).label("cost"),
    )


def _in_period(user_id: int, start: datetime, end: datetime) -> tuple[Any, ...]:
    return (
        BillingLedger.user_id == user_id,
        BillingLedger.occurred_at >= start,
        BillingLedger.occurred_at < end,
    )


async def usage_total(session: AsyncSession, *, user_id: int, start: datetime, end: datetime) -> Row[Any]:
    """Tokens and exact cost of the user's calls in [start, end)."""
    result = await session.execute(select(*_sums()).where(*_in_period(user_id, start, end)))
    return result.one()


async def usage_by_model(
    session: AsyncSession, *, user_id: int, start: datetime, end: datetime
) -> Sequence[Row[Any]]:
    statement = (
        select(BillingLedger.model_id, BillingLedger.model_name, *_sums())
        .where(*_in_period(user_id, start, end))
        .group_by(BillingLedger.model_id, BillingLedger.model_name)
        .order_by(BillingLedger.model_name, BillingLedger.model_id)
    )
    return (await session.execute(statement)).all()


async def usage_by_day(
    session: AsyncSession, *, user_id: int, start: datetime, end: datetime
) -> Sequence[Row[Any]]:
    """Grouped by the UTC calendar day of each call."""
    day = sql_cast(func.timezone("UTC", BillingLedger.occurred_at), Date).label("day")
    statement = select(day, *_sums()).where(*_in_period(user_id, start, end)).group_by(day).order_by(day)
    return (await session.execute(statement)).all()
