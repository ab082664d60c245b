"""conversation-service applies a batch read in one transaction: the same result as one event at a time,
and a failing event in a batch does not hold the others back."""

from __future__ import annotations

from typing import Any

import httpx
from shared.events import CONVERSATION_GROUP, DEAD_LETTER_STREAM

from testkit import ServiceChat, System, eventually, publish_events


async def test_a_batch_over_several_conversations_keeps_each_ones_order_and_totals(
    system: System, conversation_api: httpx.AsyncClient, stream_redis: Any
) -> None:
    first = await ServiceChat(system, conversation_api).start("first")
    second = await ServiceChat(system, conversation_api).start("second")
    events = [
        first.event("a1", input_tokens=3, output_tokens=4, system_prompt="Be brief."),
        second.event("b1", input_tokens=5, output_tokens=6),
        first.event("a2", input_tokens=7, output_tokens=8),
        second.event("b2", input_tokens=9, output_tokens=10),
    ]
    await publish_events(stream_redis, *events, events[2], atomic=True)  # one batch, one duplicate
    one = await first.wait_for_messages(5)
    two = await second.wait_for_messages(4)
    assert [(m["role"], m["content"]) for m in one["messages"]] == [
        ("system", "Be brief."),
        ("user", "a1"),
        ("assistant", "Echo: a1"),
        ("user", "a2"),
        ("assistant", "Echo: a2"),
    ]
    assert [m["content"] for m in two["messages"]] == ["b1", "Echo: b1", "b2", "Echo: b2"]
    assert [m["input_tokens"] for m in one["messages"]] == [0, 3, 0, 7, 0]
    assert (one["total_input_tokens"], one["total_output_tokens"], one["total_tokens"]) == (10, 12, 22)
    assert (two["total_input_tokens"], two["total_output_tokens"], two["total_tokens"]) == (14, 16, 30)


async def test_a_poison_event_in_a_batch_is_parked_and_the_rest_of_the_batch_applies(
    system: System, conversation_api: httpx.AsyncClient, stream_redis: Any
) -> None:
    chat = await ServiceChat(system, conversation_api).start()
    poison = chat.event("poison", input_tokens=3_000_000_000)  # does not fit the INTEGER column
    events = [chat.event("before"), poison, chat.event("after")]
    await publish_events(stream_redis, *events, atomic=True)
    detail = await chat.wait_for_messages(4)
    assert [m["content"] for m in detail["messages"]] == ["before", "Echo: before", "after", "Echo: after"]

    async def parked() -> list[dict[str, str]]:
        entries = await stream_redis.xrange(DEAD_LETTER_STREAM)
        return [
            f
            for _i, f in entries
            if f.get("group") == CONVERSATION_GROUP and str(poison.event_id) in f.get("event", "")
        ]

    await eventually(parked, timeout=25)
    assert not chat.processed(poison)
