"""The whole path through the gateway: chat replies recorded in the conversation, with tokens and bill."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from testkit import UserSession, eventually, make_user

SYSTEM_PROMPT = "Be brief."
TURN_1 = "[[input_tokens:100000]] hello"
TURN_2 = "[[input_tokens:128001]] and more"


def qwen_plus_cost(input_tokens: int, output_tokens: int) -> Decimal:
    """CONTRACT §3 by hand: the tier holding the input prices the whole call."""
    if input_tokens <= 128_000:
        prices = Decimal("0.0008"), Decimal("0.002")
    else:
        prices = Decimal("0.0024"), Decimal("0.02")
    return (input_tokens * prices[0] + output_tokens * prices[1]) / 1000


async def chat(
    gateway: httpx.AsyncClient, user: UserSession, messages: list[dict[str, str]], **extra: Any
) -> int:
    body = {"model": "qwen-plus", "messages": messages, **extra}
    response = await gateway.post("/api/llm/chat", json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Conversation-Id"])


async def detail_with(gateway: httpx.AsyncClient, user: UserSession, conversation_id: int, count: int) -> Any:
    async def ready() -> Any:
        response = await gateway.get(f"/api/conversations/{conversation_id}", headers=user.headers)
        data = response.json()["data"]
        return data if len(data["messages"]) >= count and data["bill"] != "0.0000" else None

    return await eventually(ready, timeout=10)


async def test_replies_are_recorded_with_tokens_models_totals_and_bill(gateway: httpx.AsyncClient) -> None:
    user = await make_user(gateway)
    first = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": TURN_1}]
    conversation_id = await chat(gateway, user, first)
    detail = await detail_with(gateway, user, conversation_id, 3)
    reply_1 = f"Echo: {TURN_1}"
    assert detail["title"] == TURN_1[:50]
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [
        ("system", SYSTEM_PROMPT),
        ("user", TURN_1),
        ("assistant", reply_1),
    ]
    system_message, user_message, assistant = detail["messages"]
    assert (system_message["input_tokens"], system_message["output_tokens"]) == (0, 0)
    assert (user_message["input_tokens"], user_message["output_tokens"]) == (100_000, 0)
    assert (assistant["input_tokens"], assistant["output_tokens"]) == (0, len(reply_1))
    assert assistant["model_name"] == "qwen-plus" and assistant["model_id"] is not None
    cost_1 = qwen_plus_cost(100_000, len(reply_1))

    second = [*first, {"role": "assistant", "content": reply_1}, {"role": "user", "content": TURN_2}]
    await chat(gateway, user, second, conversation_id=conversation_id)
    detail = await detail_with(gateway, user, conversation_id, 5)
    reply_2 = f"Echo: {TURN_2}"
    assert [m["content"] for m in detail["messages"]] == [SYSTEM_PROMPT, TURN_1, reply_1, TURN_2, reply_2]
    assert detail["messages"][3]["input_tokens"] == 128_001
    assert detail["messages"][4]["output_tokens"] == len(reply_2)
    assert detail["total_input_tokens"] == 228_001
    assert detail["total_output_tokens"] == len(reply_1) + len(reply_2)
    assert detail["total_tokens"] == 228_001 + len(reply_1) + len(reply_2)
    exact = cost_1 + qwen_plus_cost(128_001, len(reply_2))  # the second call is priced by tier 2

    async def billed_both() -> Any:
        response = await gateway.get(f"/api/conversations/{conversation_id}", headers=user.headers)
        data = response.json()["data"]
        expected = str(exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
        return data if data["bill"] == expected else None

    await eventually(billed_both, timeout=10)

    listed = await gateway.get("/api/conversations", headers=user.headers)
    assert listed.headers["X-Total-Count"] == "1"
    assert listed.json()["data"][0]["id"] == conversation_id


async def test_another_user_gets_404_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    owner, stranger = await make_user(gateway), await make_user(gateway)
    created = await gateway.post("/api/conversations", json={"title": "mine"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    conversation_id = created.json()["data"]["id"]
    for method, path in [
        ("GET", f"/api/conversations/{conversation_id}"),
        ("PUT", f"/api/conversations/{conversation_id}"),
        ("DELETE", f"/api/conversations/{conversation_id}"),
        ("GET", f"/api/conversations/{conversation_id}/messages"),
    ]:
        body = {"title": "taken"} if method == "PUT" else None
        response = await gateway.request(method, path, json=body, headers=stranger.headers)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["message"] == "Conversation not found."
    chat_body = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}
    response = await gateway.post(
        "/api/llm/chat", json={**chat_body, "conversation_id": conversation_id}, headers=stranger.headers
    )
    assert response.status_code == 404
