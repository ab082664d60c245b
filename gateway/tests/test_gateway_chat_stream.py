"""A chat stream end to end through the gateway: frames pass as they come, a client leaving reaches
DashScope (the stand-in logs the call as `cancelled`), and a stream the gateway's own shutdown cuts
still ends as CONTRACT §2 has a failure mid-stream end."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from llm_service.schemas.llm_schema import StreamChunk, StreamError
from shared.events import COMPLETION_STREAM

from testkit import System, UserSession, eventually, make_user, stream_stopping


@pytest.fixture(scope="module")
async def chatter(system: System) -> UserSession:
    async with httpx.AsyncClient(base_url=system.gateway, timeout=30) as client:
        return await make_user(client, apikey=f"sk-gwtest-{uuid.uuid4().hex}")


def chat(content: str) -> dict[str, Any]:
    return {"model": "qwen-turbo", "messages": [{"role": "user", "content": content}], "stream": True}


async def last_call(system: System, apikey: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(timeout=5) as client:
        calls = (await client.get(f"{system.standin}/_standin/calls")).json()
    mine = [call for call in calls if call["api_key"] == apikey]
    return mine[-1] if mine else None


async def test_frames_arrive_one_by_one_with_the_stream_headers(
    gateway: httpx.AsyncClient, chatter: UserSession
) -> None:
    arrivals: list[float] = []
    body = b""
    async with gateway.stream(
        "POST", "/api/llm/chat", json=chat("[[delay_ms:150]] abcdefgh"), headers=chatter.headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        assert int(response.headers["x-conversation-id"]) > 0
        assert "content-encoding" not in response.headers
        async for chunk in response.aiter_bytes():
            arrivals.append(time.monotonic())
            body += chunk
    assert body.endswith(b"data: [DONE]\n\n")
    # The reply comes in several 150 ms pieces; buffering anywhere would deliver them in one lump.
    assert len(arrivals) >= 3
    assert arrivals[-1] - arrivals[0] > 0.3


async def test_a_client_leaving_mid_stream_cancels_the_upstream_call(
    gateway: httpx.AsyncClient, system: System, chatter: UserSession
) -> None:
    assert chatter.apikey is not None
    async with gateway.stream(
        "POST", "/api/llm/chat", json=chat("[[tokens:400]] [[delay_ms:50]]"), headers=chatter.headers
    ) as response:
        assert response.status_code == 200
        await anext(response.aiter_bytes())
    outcome = None
    for _ in range(100):
        call = await last_call(system, chatter.apikey)
        outcome = call and call["outcome"]
        if outcome == "cancelled":
            break
        await asyncio.sleep(0.05)
    assert outcome == "cancelled"


async def completion_events(redis: Any, conversation_id: int) -> list[dict[str, Any]]:
    """The completion events llm-service published for a conversation, oldest first."""
    events = [json.loads(fields["event"]) for _, fields in await redis.xrange(COMPLETION_STREAM)]
    return [event for event in events if event.get("conversation_id") == conversation_id]


async def test_a_stream_cut_by_the_gateways_shutdown_ends_with_an_error_frame_and_is_recorded(
    gateway: httpx.AsyncClient, system: System, chatter: UserSession, stream_redis: Any
) -> None:
    """SIGTERM: the gateway lets a stream run SHUTDOWN_GRACE_SECONDS, then cuts it with the error frame
    and `[DONE]` (not a broken body), and llm-service records the reply as interrupted. Pieces come
    every 0.75 s and the cut about 1.1 s after the first, so none is on its way then: what is recorded
    is exactly what the client got."""
    await asyncio.to_thread(system.stop, "gateway")
    try:
        await asyncio.to_thread(system.start, "gateway", extra_env={"SHUTDOWN_GRACE_SECONDS": "1"})
        body = chat("[[tokens:400]] [[delay_ms:750]]")
        received, conversation_id = await stream_stopping(
            gateway, system, "gateway", body=body, headers=chatter.headers
        )
    finally:
        await asyncio.to_thread(system.stop, "gateway")
        await asyncio.to_thread(system.start, "gateway")

    *deltas, error, done, end = received.split(b"\n\n")
    assert (done, end) == (b"data: [DONE]", b"")
    cut = StreamChunk(
        content="",
        finish_reason="error",
        error=StreamError(code="InternalError", message="The gateway stopped in the middle of the reply."),
    )
    assert error + b"\n\n" == cut.to_sse()  # byte for byte as llm-service writes its own error frame
    sent = "".join(json.loads(delta.removeprefix(b"data: "))["content"] for delta in deltas)
    assert len(deltas) >= 2 and len(sent) < 400

    events = await eventually(lambda: completion_events(stream_redis, conversation_id), timeout=10)
    await asyncio.sleep(0.3)  # a second event would show up by now
    assert await completion_events(stream_redis, conversation_id) == events
    (event,) = events
    assert event["status"] == "interrupted"
    assert event["assistant_content"] == sent
