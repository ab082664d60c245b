"""A chat stream end to end through the gateway: frames pass as they come, and a client leaving reaches
DashScope (the stand-in logs the call as `cancelled`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from testkit import System, UserSession, make_user


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
