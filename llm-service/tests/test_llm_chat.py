"""Non-stream chat through the gateway: the reply, the conversation, the parameters and the event."""

from __future__ import annotations

from typing import Any

import httpx
from llm_testkit import (
    CHAT,
    chat_body,
    new_user,
    outbox_rows,
    standin_calls,
    wait_for_event,
)

from testkit import System, model_id_of


async def test_chat_returns_the_standins_reply_and_usage(gateway: httpx.AsyncClient) -> None:
    user = await new_user(gateway)
    response = await gateway.post(CHAT, json=chat_body("hello world"), headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    conversation_id = int(response.headers["X-Conversation-Id"])
    assert body == {
        "code": 200,
        "message": "success",
        "data": {
            "content": "Echo: hello world",
            "finish_reason": "stop",
            "usage": {"input_tokens": 11, "output_tokens": 17, "total_tokens": 28},
            "conversation_id": conversation_id,
        },
    }


async def test_chat_without_conversation_creates_one_titled_from_the_message(
    gateway: httpx.AsyncClient,
) -> None:
    user = await new_user(gateway)
    content = "What is the difference between a list and a tuple in Python, briefly?"
    response = await gateway.post(CHAT, json=chat_body(content), headers=user.headers)
    assert response.status_code == 200, response.text
    conversation_id = int(response.headers["X-Conversation-Id"])
    conversation = await gateway.get(f"/api/conversations/{conversation_id}", headers=user.headers)
    assert conversation.status_code == 200, conversation.text
    assert conversation.json()["data"]["title"] == content[:50]
    assert conversation.json()["data"]["user_id"] == user.id


async def test_chat_records_exactly_one_event_without_the_key(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    user = await new_user(gateway)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Echo: first"},
        {"role": "user", "content": "second"},
    ]
    response = await gateway.post(
        CHAT, json={"model": "qwen-turbo", "messages": messages}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    conversation_id = int(response.headers["X-Conversation-Id"])

    event = await wait_for_event(stream_redis, conversation_id=conversation_id)
    assert user.apikey is not None and user.apikey not in event["_raw"]
    calls = await standin_calls(system, user.apikey)
    assert len(calls) == 1
    assert event["user_id"] == user.id
    assert event["model_id"] == model_id_of(system.database, "qwen-turbo")
    assert event["model_name"] == "qwen-turbo"
    assert event["status"] == "completed"
    assert event["finish_reason"] == "stop"
    assert event["assistant_content"] == "Echo: second"
    # New conversation beginning with a system message: it is stored, then the last user message.
    assert event["messages_to_store"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "second"},
    ]
    input_tokens = sum(len(m["content"]) for m in messages)
    assert event["usage"] == {
        "input_tokens": input_tokens,
        "output_tokens": 12,
        "total_tokens": input_tokens + 12,
    }
    assert event["request_id"]
    assert outbox_rows(system, user_id=user.id) == []  # published at once: the outbox is for outages


async def test_chat_in_an_existing_conversation_keeps_it(
    gateway: httpx.AsyncClient, stream_redis: Any
) -> None:
    user = await new_user(gateway)
    created = await gateway.post("/api/conversations", json={"title": "mine"}, headers=user.headers)
    assert created.status_code == 201, created.text
    conversation_id = created.json()["data"]["id"]
    body = {
        "model": "qwen-plus",
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "again"}],
        "conversation_id": conversation_id,
    }
    response = await gateway.post(CHAT, json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["conversation_id"] == conversation_id
    assert response.headers["X-Conversation-Id"] == str(conversation_id)
    event = await wait_for_event(stream_redis, conversation_id=conversation_id)
    # Not created by this request: only the last user message is stored.
    assert event["messages_to_store"] == [{"role": "user", "content": "again"}]


async def test_parameters_and_the_users_own_key_reach_dashscope(
    gateway: httpx.AsyncClient, system: System
) -> None:
    user = await new_user(gateway)
    body = chat_body("params", temperature=0.3, top_p=0.8, max_tokens=50)
    response = await gateway.post(CHAT, json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    assert user.apikey is not None
    (call,) = await standin_calls(system, user.apikey)
    assert call["parameters"] == {
        "temperature": 0.3,
        "top_p": 0.8,
        "max_tokens": 50,
        "result_format": "message",
    }
    assert call["model"] == "qwen-plus"
    assert call["stream"] is False
    assert call["message_count"] == 1


async def test_parameters_not_given_are_not_sent(gateway: httpx.AsyncClient, system: System) -> None:
    user = await new_user(gateway)
    response = await gateway.post(CHAT, json=chat_body("defaults"), headers=user.headers)
    assert response.status_code == 200, response.text
    assert user.apikey is not None
    (call,) = await standin_calls(system, user.apikey)
    assert call["parameters"] == {"result_format": "message"}


async def test_max_tokens_cuts_the_reply_with_length(gateway: httpx.AsyncClient, stream_redis: Any) -> None:
    user = await new_user(gateway)
    response = await gateway.post(CHAT, json=chat_body("cut me short", max_tokens=7), headers=user.headers)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["content"] == "Echo: c"
    assert data["finish_reason"] == "length"
    assert data["usage"] == {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}
    event = await wait_for_event(stream_redis, conversation_id=data["conversation_id"])
    assert (event["status"], event["finish_reason"]) == ("completed", "length")
