"""Billing a finished call from its completion event, and the caller's usage report."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from shared.conversation_locks import lock_conversations
from shared.db import read_from_one_snapshot
from shared.events import CompletionEvent, first_of_each
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.repositories import ledger_repository
from billing_service.schemas.billing_schema import DayUsage, ModelUsage, UsageResponse, UsageTotals
from billing_service.services.billing_calculator import CURRENCY, BillingCalculator
from billing_service.services.price_service import PriceBook

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    BILLED = "billed"
    DUPLICATE = "duplicate"
    LEDGER_ONLY = "ledger_only"  # the conversation is gone (or not the caller's): the money is still recorded


async def bill_completion_events(
    session: AsyncSession,
    events: Sequence[CompletionEvent],
    *,
    prices: PriceBook,
    calculator: BillingCalculator,
) -> dict[uuid.UUID, Outcome]:
    """Record each call's exact cost in the ledger and recompute its conversation's bill, at most once
    per `event_id`, in the caller's transaction; a deleted conversation still gets its ledger line (the
    call happened and is owed), but no bill. A handful of statements whatever the batch:
    the conversations locked in id order, every ledger line written with one INSERT (a billed
    `event_id` is skipped), then each affected bill recomputed once from the ledger. The outcome of
    each event id."""
    unique = first_of_each(events)
    lines = []
    for event in unique.values():
        price = await prices.price_for(session, model_id=event.model_id)
        cost = calculator.calculate(
            price,
            input_tokens=event.usage.input_tokens,
            output_tokens=event.usage.output_tokens,
            model=event.model_name,
        )
        lines.append(
            {
                "event_id": event.event_id,
                "user_id": event.user_id,
                "conversation_id": event.conversation_id,
                "model_id": event.model_id,
                "model_name": event.model_name,
                "input_tokens": event.usage.input_tokens,
                "output_tokens": event.usage.output_tokens,
                "billing_mode": cost.billing_mode,
                "input_price": cost.input_price,
                "output_price": cost.output_price,
                "cost": cost.cost,
                "currency": cost.currency,
                "occurred_at": event.occurred_at,
            }
        )
    # Every ledger line of a conversation is written under this lock, so the bill recomputed after it
    # sees all of them.
    owners = await lock_conversations(session, (event.conversation_id for event in unique.values()))
    inserted = await ledger_repository.insert_lines(session, lines)
    outcomes: dict[uuid.UUID, Outcome] = {}
    to_bill: set[int] = set()
    for event_id, event in unique.items():
        if event_id not in inserted:
            outcomes[event_id] = Outcome.DUPLICATE
        elif owners.get(event.conversation_id) != event.user_id:
            logger.warning(
                "billed call of a conversation that is gone or not the user's; bill left alone",
                extra={"event_id": str(event_id), "conversation_id": event.conversation_id},
            )
            outcomes[event_id] = Outcome.LEDGER_ONLY
        else:
            to_bill.add(event.conversation_id)
            outcomes[event_id] = Outcome.BILLED
    await ledger_repository.set_bills_from_ledger(session, conversation_ids=sorted(to_bill))
    return outcomes


def _totals(row: Row[Any]) -> dict[str, Any]:
    input_tokens, output_tokens = int(row.input_tokens), int(row.output_tokens)
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cost": Decimal(row.cost),
    }


async def usage_report(
    session: AsyncSession, *, user_id: int, date_from: date, date_to: date
) -> UsageResponse:
    """The caller's tokens and exact costs from `date_from` to `date_to` (UTC days, both included);
    each cost shown is an exact sum rounded once."""
    await read_from_one_snapshot(session)  # total, by_model and by_day agree while calls are billed
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)
    total = await ledger_repository.usage_total(session, user_id=user_id, start=start, end=end)
    by_model = await ledger_repository.usage_by_model(session, user_id=user_id, start=start, end=end)
    by_day = await ledger_repository.usage_by_day(session, user_id=user_id, start=start, end=end)
    return UsageResponse(
        date_from=date_from,
        date_to=date_to,
        currency=CURRENCY,
        total=UsageTotals(**_totals(total)),
        by_model=[ModelUsage(model_id=r.model_id, model_name=r.model_name, **_totals(r)) for r in by_model],
        by_day=[DayUsage(date=r.day, **_totals(r)) for r in by_day],
    )
