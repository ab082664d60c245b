"""billing-service bills a batch read in one transaction: the same ledger and bills as one event at a
time, and a failing event in a batch does not hold the others back."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
from shared.events import BILLING_GROUP, DEAD_LETTER_STREAM

from testkit import ServiceChat, System, eventually, publish_events


def costs(system: System, *event_ids: uuid.UUID) -> dict[uuid.UUID, Decimal]:
    with system.database.connect() as conn:
        rows = conn.execute(
            "SELECT event_id, cost FROM aigcspace.billing_ledger WHERE event_id = ANY(%s)", (list(event_ids),)
        ).fetchall()
    return {row[0]: row[1] for row in rows}


async def test_a_batch_over_several_conversations_bills_each_the_rounded_sum_of_its_lines(
    system: System, conversation_api: httpx.AsyncClient, stream_redis: Any
) -> None:
    first = await ServiceChat(system, conversation_api).start("first")
    second = await ServiceChat(system, conversation_api).start("second")
    # qwen-plus first tier: 30 input + 10 output tokens cost 0.000044 each.
    events = [
        chat.event(f"q{i}", input_tokens=30, output_tokens=10) for i in range(3) for chat in (first, second)
    ]
    events.append(second.event("big", input_tokens=100_000, output_tokens=1_000))  # 0.082
    await publish_events(stream_redis, *events, events[0], atomic=True)  # one batch, one duplicate
    ids = [e.event_id for e in events]
    await eventually(lambda: len(costs(system, *ids)) == len(ids) or None)
    assert (await first.detail())["bill"] == "0.0001"  # 0.000132
    assert (await second.detail())["bill"] == "0.0821"  # 0.082132


async def test_a_poison_event_in_a_batch_is_parked_and_the_rest_is_billed(
    system: System, conversation_api: httpx.AsyncClient, stream_redis: Any
) -> None:
    chat = await ServiceChat(system, conversation_api).start()
    poison = chat.event("poison", input_tokens=3_000_000_000)  # does not fit the ledger's INTEGER column
    good = [chat.event(f"good {i}", input_tokens=1_000, output_tokens=0) for i in range(2)]
    await publish_events(stream_redis, good[0], poison, good[1], atomic=True)
    await eventually(lambda: len(costs(system, *(e.event_id for e in good))) == 2 or None)
    assert (await chat.detail())["bill"] == "0.0016"

    async def parked() -> list[dict[str, str]]:
        entries = await stream_redis.xrange(DEAD_LETTER_STREAM)
        return [
            f for _i, f in entries if f.get("group") == BILLING_GROUP and str(poison.event_id) in f["event"]
        ]

    await eventually(parked, timeout=25)
    assert costs(system, poison.event_id) == {}
