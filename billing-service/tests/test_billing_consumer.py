"""billing-service's completion consumer: one exact ledger line per event and the conversation's bill."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from shared.events import BILLING_GROUP, DEAD_LETTER_STREAM

from testkit import ServiceChat, System, eventually, publish_events


@pytest.fixture
async def chat(system: System, conversation_api: httpx.AsyncClient) -> ServiceChat:
    return await ServiceChat(system, conversation_api).start()


def ledger(system: System, *event_ids: uuid.UUID) -> list[dict[str, Any]]:
    with system.database.connect() as conn:
        cursor = conn.execute(
            "SELECT event_id, user_id, conversation_id, model_id, model_name, input_tokens, output_tokens, "
            "billing_mode, input_price, output_price, cost, currency FROM aigcspace.billing_ledger "
            "WHERE event_id = ANY(%s) ORDER BY id",
            (list(event_ids),),
        )
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


async def wait_billed(system: System, *events: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    ids = [e.event_id for e in events]

    def all_lines() -> list[dict[str, Any]] | None:
        lines = ledger(system, *ids)
        return lines if len(lines) == len(set(ids)) else None

    billed: list[dict[str, Any]] = await eventually(all_lines, timeout=timeout)
    return billed


def add_simple_model(system: System, input_price: str, output_price: str) -> str:
    """A model of this test's own with a simple price; returns its name."""
    name = f"test-simple-{uuid.uuid4().hex[:8]}"
    with system.database.connect() as conn:
        row = conn.execute(
            "INSERT INTO aigcspace.model (name, category) VALUES (%s, 0) RETURNING id", (name,)
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO aigcspace.model_price (model_id, billing_mode, input_price, output_price) "
            "VALUES (%s, 'simple', %s, %s)",
            (row[0], input_price, output_price),
        )
    return name


async def test_a_call_gets_a_ledger_line_with_its_exact_cost_and_the_prices_used(
    system: System, chat: ServiceChat, stream_redis: Any
) -> None:
    event = chat.event("hi", input_tokens=7, output_tokens=3, model="qwen-turbo")
    await publish_events(stream_redis, event)
    [line] = await wait_billed(system, event)
    assert line["user_id"] == chat.user_id
    assert line["conversation_id"] == chat.conversation_id
    assert (line["model_id"], line["model_name"]) == (event.model_id, "qwen-turbo")
    assert (line["input_tokens"], line["output_tokens"]) == (7, 3)
    assert line["billing_mode"] == "simple"
    assert (line["input_price"], line["output_price"]) == (Decimal("0.0003"), Decimal("0.0006"))
    assert line["cost"] == Decimal("0.0000039")
    assert line["currency"] == "CNY"
    assert (await chat.detail())["bill"] == "0.0000"


async def test_twenty_five_calls_of_0_00004_bill_0_0010(
    system: System, chat: ServiceChat, stream_redis: Any
) -> None:
    model = add_simple_model(system, "0.04", "0")  # one input token costs 0.00004
    events = [chat.event(f"tiny {i}", input_tokens=1, output_tokens=0, model=model) for i in range(25)]
    await publish_events(stream_redis, *events)
    lines = await wait_billed(system, *events)
    assert {line["cost"] for line in lines} == {Decimal("0.00004")}
    assert (await chat.detail())["bill"] == "0.0010"


@pytest.mark.parametrize(
    ("model", "input_tokens", "output_tokens", "bill", "input_price"),
    [
        ("qwen-plus", 128_000, 1_000, "0.1044", Decimal("0.0008")),
        ("qwen-plus", 128_001, 1_000, "0.3272", Decimal("0.0024")),  # exact cost 0.3272024
        ("qwen3-max", 32_000, 100, "0.0810", Decimal("0.0025")),
        ("qwen3-max", 32_001, 100, "0.1296", Decimal("0.004")),  # exact cost 0.129604
        ("qwen-turbo", 1_000, 1_000, "0.0009", Decimal("0.0003")),
    ],
)
async def test_bills_match_the_contract_at_the_tier_boundaries(
    system: System,
    chat: ServiceChat,
    stream_redis: Any,
    model: str,
    input_tokens: int,
    output_tokens: int,
    bill: str,
    input_price: Decimal,
) -> None:
    event = chat.event("long", input_tokens=input_tokens, output_tokens=output_tokens, model=model)
    await publish_events(stream_redis, event)
    [line] = await wait_billed(system, event)
    assert line["input_price"] == input_price
    assert (await chat.detail())["bill"] == bill


async def test_a_bill_is_the_rounded_sum_not_the_sum_of_rounded_costs(
    system: System, chat: ServiceChat, stream_redis: Any
) -> None:
    # qwen-plus first tier: 30 input + 10 output tokens cost 0.000044 each; 3 calls: 0.000132 -> 0.0001,
    # where rounding each call first would have billed 0.0000.
    events = [chat.event(f"q{i}", input_tokens=30, output_tokens=10) for i in range(3)]
    await publish_events(stream_redis, *events)
    lines = await wait_billed(system, *events)
    assert sum(line["cost"] for line in lines) == Decimal("0.000132")
    assert (await chat.detail())["bill"] == "0.0001"


async def test_a_bill_rounds_half_up(system: System, chat: ServiceChat, stream_redis: Any) -> None:
    # 0.00005 exactly: half-up bills 0.0001, where half-even (Python's default) would bill 0.0000.
    model = add_simple_model(system, "0.05", "0")
    event = chat.event("half", input_tokens=1, output_tokens=0, model=model)
    await publish_events(stream_redis, event)
    [line] = await wait_billed(system, event)
    assert line["cost"] == Decimal("0.00005")
    assert (await chat.detail())["bill"] == "0.0001"


async def test_a_call_naming_someone_elses_conversation_is_not_in_its_bill(
    system: System, chat: ServiceChat, conversation_api: httpx.AsyncClient, stream_redis: Any
) -> None:
    """Billed to the caller's own usage, but the conversation's bill sums its owner's calls only (as
    conversation-service stores only the owner's messages)."""
    other = ServiceChat(system, conversation_api)
    other.conversation_id = chat.conversation_id  # not theirs
    foreign = other.event("not mine", input_tokens=100_000, output_tokens=0)
    await publish_events(stream_redis, foreign)
    [line] = await wait_billed(system, foreign)
    assert line["user_id"] == other.user_id and line["cost"] == Decimal("0.08")
    own = chat.event("mine", input_tokens=1_000, output_tokens=0)
    await publish_events(stream_redis, own)
    await wait_billed(system, own)
    assert (await chat.detail())["bill"] == "0.0008"


async def test_a_republished_event_is_billed_once(
    system: System, chat: ServiceChat, stream_redis: Any
) -> None:
    event = chat.event("once", input_tokens=100_000, output_tokens=1_000)
    marker = chat.event("marker", input_tokens=1, output_tokens=0)
    await publish_events(stream_redis, event)
    await wait_billed(system, event)
    await publish_events(stream_redis, event, event, marker)
    await wait_billed(system, marker)
    assert len(ledger(system, event.event_id)) == 1
    # 100,000 × 0.0008 + 1,000 × 0.002 = 82 per 1,000 → 0.082; plus the marker's 0.0000008
    assert (await chat.detail())["bill"] == "0.0820"


async def test_a_model_without_a_price_is_billed_zero_and_still_recorded(
    system: System, chat: ServiceChat, stream_redis: Any
) -> None:
    name = f"test-unpriced-{uuid.uuid4().hex[:8]}"
    with system.database.connect() as conn:
        conn.execute("INSERT INTO aigcspace.model (name, category) VALUES (%s, 0)", (name,))
    event = chat.event("free?", input_tokens=500, output_tokens=500, model=name)
    await publish_events(stream_redis, event)
    [line] = await wait_billed(system, event)
    assert line["cost"] == 0
    assert (line["billing_mode"], line["input_price"], line["output_price"]) == (None, None, None)
    detail = await chat.wait_for_messages(2)  # the chat is recorded all the same
    assert detail["bill"] == "0.0000"
    assert "no usable price" in system.log("billing")


async def test_a_call_of_a_deleted_conversation_keeps_its_ledger_line(
    system: System, chat: ServiceChat, stream_redis: Any
) -> None:
    response = await chat.client.delete(f"/api/conversations/{chat.conversation_id}", headers=chat.headers())
    assert response.status_code == 200
    event = chat.event("after delete", input_tokens=1_000, output_tokens=0)
    await publish_events(stream_redis, event)
    [line] = await wait_billed(system, event)
    assert line["cost"] == Decimal("0.0008")


async def test_a_poison_event_goes_to_the_billing_dead_letter(
    system: System, chat: ServiceChat, stream_redis: Any
) -> None:
    poison = chat.event("poison", input_tokens=3_000_000_000)  # does not fit the ledger's INTEGER column
    after = chat.event("after the poison", input_tokens=1_000, output_tokens=0)
    await publish_events(stream_redis, poison, after)
    await wait_billed(system, after)  # the group is not held up

    async def parked() -> list[dict[str, str]]:
        entries = await stream_redis.xrange(DEAD_LETTER_STREAM)
        return [
            f for _i, f in entries if f.get("group") == BILLING_GROUP and str(poison.event_id) in f["event"]
        ]

    [fields] = await eventually(parked, timeout=25)
    assert "failed 5 times" in fields["reason"]
    assert ledger(system, poison.event_id) == []
