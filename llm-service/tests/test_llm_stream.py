"""Streamed chat through the gateway: the SSE bytes, their timing, usage, `length` and the event."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from llm_testkit import CHAT, chat_body, frame_data, new_user, sse_frames, standin_calls, wait_for_event

from testkit import System


async def test_stream_sends_the_seeds_frames_exactly(gateway: httpx.AsyncClient) -> None:
    user = await new_user(gateway)
    response = await gateway.post(CHAT, json=chat_body("hello there", stream=True), headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert int(response.headers["X-Conversation-Id"]) > 0
    # "Echo: hello there" in the stand-in's 4-character pieces, then the final frame, then [DONE].
    assert sse_frames(response.content) == [
        b'data: {"content":"Echo","finish_reason":null,"usage":null}',
        b'data: {"content":": he","finish_reason":null,"usage":null}',
        b'data: {"content":"llo ","finish_reason":null,"usage":null}',
        b'data: {"content":"ther","finish_reason":null,"usage":null}',
        b'data: {"content":"e","finish_reason":null,"usage":null}',
        b'data: {"content":"","finish_reason":"stop",'
        b'"usage":{"input_tokens":11,"output_tokens":17,"total_tokens":28}}',
        b"data: [DONE]",
    ]


async def test_stream_deltas_add_up_to_the_recorded_reply_and_usage(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    user = await new_user(gateway)
    content = "[[tokens:250]] 你好, unicode too"
    response = await gateway.post(CHAT, json=chat_body(content, stream=True), headers=user.headers)
    assert response.status_code == 200, response.text
    frames = [frame_data(frame) for frame in sse_frames(response.content)]
    assert frames[-1] == "[DONE]"
    chunks = frames[:-1]
    assert all(chunk["finish_reason"] is None and chunk["usage"] is None for chunk in chunks[:-1])
    assert all("error" not in chunk for chunk in chunks)
    final = chunks[-1]
    assert final["finish_reason"] == "stop"
    assert final["usage"] == {
        "input_tokens": len(content),
        "output_tokens": 250,
        "total_tokens": len(content) + 250,
    }
    text = "".join(chunk["content"] for chunk in chunks)
    assert len(text) == 250

    event = await wait_for_event(stream_redis, conversation_id=int(response.headers["X-Conversation-Id"]))
    assert event["assistant_content"] == text
    assert event["usage"] == final["usage"]
    assert (event["status"], event["finish_reason"]) == ("completed", "stop")
    assert event["messages_to_store"] == [{"role": "user", "content": content}]
    assert user.apikey is not None and user.apikey not in event["_raw"]


async def test_stream_parameters_and_incremental_output_reach_dashscope(
    gateway: httpx.AsyncClient, system: System
) -> None:
    user = await new_user(gateway)
    body = chat_body("p", stream=True, temperature=1.5, top_p=0.25, max_tokens=64)
    response = await gateway.post(CHAT, json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    assert user.apikey is not None
    (call,) = await standin_calls(system, user.apikey)
    assert call["stream"] is True
    assert call["parameters"] == {
        "temperature": 1.5,
        "top_p": 0.25,
        "max_tokens": 64,
        "result_format": "message",
        "incremental_output": True,
    }


async def test_stream_frames_arrive_while_dashscope_is_still_writing(gateway: httpx.AsyncClient) -> None:
    user = await new_user(gateway)
    body = chat_body("[[tokens:40]] [[delay_ms:100]]", stream=True)  # 10 pieces, 100 ms apart
    arrivals: list[float] = []
    started = time.monotonic()
    async with gateway.stream("POST", CHAT, json=body, headers=user.headers) as response:
        assert response.status_code == 200
        buffer = b""
        async for piece in response.aiter_raw():
            buffer += piece
            while b"\n\n" in buffer:
                _, buffer = buffer.split(b"\n\n", 1)
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 12  # 10 pieces, the final frame, [DONE]
    # The first piece is there long before the last one was written, and they come spread out.
    assert arrivals[-1] - arrivals[0] > 0.6, arrivals
    assert arrivals[4] - arrivals[0] > 0.25, arrivals


async def test_stream_cut_by_max_tokens_ends_with_length(
    gateway: httpx.AsyncClient, stream_redis: Any
) -> None:
    user = await new_user(gateway)
    response = await gateway.post(
        CHAT, json=chat_body("truncate", stream=True, max_tokens=6), headers=user.headers
    )
    assert response.status_code == 200, response.text
    frames = [frame_data(frame) for frame in sse_frames(response.content)]
    assert frames == [
        {"content": "Echo", "finish_reason": None, "usage": None},
        {"content": ": ", "finish_reason": None, "usage": None},
        {
            "content": "",
            "finish_reason": "length",
            "usage": {"input_tokens": 8, "output_tokens": 6, "total_tokens": 14},
        },
        "[DONE]",
    ]
    event = await wait_for_event(stream_redis, conversation_id=int(response.headers["X-Conversation-Id"]))
    assert (event["status"], event["finish_reason"], event["assistant_content"]) == (
        "completed",
        "length",
        "Echo: ",
    )


@pytest.mark.parametrize(("content", "title"), [("   ", "   "), ("", "New chat")], ids=["blank", "empty"])
async def test_stream_without_conversation_creates_one_with_the_system_message(
    gateway: httpx.AsyncClient, stream_redis: Any, content: str, title: str
) -> None:
    user = await new_user(gateway)
    body = {
        "model": "qwen-max",
        "stream": True,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": content}],
    }
    response = await gateway.post(CHAT, json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    conversation_id = int(response.headers["X-Conversation-Id"])
    conversation = await gateway.get(f"/api/conversations/{conversation_id}", headers=user.headers)
    assert conversation.json()["data"]["title"] == title  # the message as it is; an empty one can't be
    event = await wait_for_event(stream_redis, conversation_id=conversation_id)
    assert event["messages_to_store"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": content},
    ]


async def test_many_streams_are_served_at_once(gateway: httpx.AsyncClient) -> None:
    user = await new_user(gateway)
    body = chat_body("[[tokens:20]] [[delay_ms:200]]", stream=True)  # each takes at least 1 s
    count = 20
    started = time.monotonic()
    responses = await asyncio.gather(
        *(gateway.post(CHAT, json=body, headers=user.headers) for _ in range(count))
    )
    elapsed = time.monotonic() - started
    assert [response.status_code for response in responses] == [200] * count
    assert all(sse_frames(response.content)[-1] == b"data: [DONE]" for response in responses)
    assert len({response.headers["X-Conversation-Id"] for response in responses}) == count
    assert elapsed < 8, elapsed  # one after the other they would take 20 s


async def test_a_nul_in_the_message_or_the_reply_is_sent_and_kept_as_u_fffd(
    gateway: httpx.AsyncClient, stream_redis: Any
) -> None:
    user = await new_user(gateway)
    body = {"model": "qwen-max", "stream": True, "messages": [{"role": "user", "content": "hello\x00world"}]}
    response = await gateway.post(CHAT, json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    conversation_id = int(response.headers["X-Conversation-Id"])
    conversation = await gateway.get(f"/api/conversations/{conversation_id}", headers=user.headers)
    assert conversation.json()["data"]["title"] == "hello\ufffdworld"  # as PostgreSQL can store it
    sent = "".join(frame_data(frame)["content"] for frame in sse_frames(response.content)[:-1])
    assert sent == "Echo: hello\ufffdworld"  # the reply too: the client gets what is kept
    event = await wait_for_event(stream_redis, conversation_id=conversation_id)
    assert event["assistant_content"] == sent
