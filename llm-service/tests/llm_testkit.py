"""Helpers of llm-service's tests: the stand-in's call log, SSE framing and the completion stream.

Imported by module name (test folders are not packages; pytest puts this folder on sys.path).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
from shared.events import COMPLETION_STREAM

from testkit import System, UserSession, make_user

CHAT = "/api/llm/chat"


def new_apikey() -> str:
    """A key of this test's own, so the stand-in's log can be filtered by it."""
    return f"sk-llmtest-{uuid.uuid4().hex}"


async def new_user(gateway: httpx.AsyncClient, *, apikey: str | None = None) -> UserSession:
    """A registered user with a fresh key the stand-in accepts (unless `apikey` says otherwise)."""
    return await make_user(gateway, apikey=apikey or new_apikey())


async def standin_calls(system: System, api_key: str) -> list[dict[str, Any]]:
    """The stand-in's logged calls made with `api_key`, oldest first."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{system.standin}/_standin/calls")
    response.raise_for_status()
    return [call for call in response.json() if call["api_key"] == api_key]


async def assert_no_dashscope_call(system: System, user: UserSession) -> None:
    """The stand-in received no call with the user's key: the request was refused before DashScope."""
    assert user.apikey is not None
    assert await standin_calls(system, user.apikey) == []


async def wait_for_outcome(
    system: System, api_key: str, outcome: str, timeout: float = 5.0
) -> dict[str, Any]:
    """The last call with `api_key` once its outcome is `outcome`; fails with what was seen."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = await standin_calls(system, api_key)
        if seen and seen[-1]["outcome"] == outcome:
            return seen[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no call with outcome {outcome!r}; calls: {seen}")


def sse_frames(body: bytes) -> list[bytes]:
    """The frames of an SSE body, each exactly `data: ...` (the body must be `data: ...\\n\\n` repeated)."""
    assert body.endswith(b"\n\n"), body[-200:]
    frames = body[:-2].split(b"\n\n")
    for frame in frames:
        assert frame.startswith(b"data: "), frame
        assert b"\n" not in frame, frame
    return frames


def frame_data(frame: bytes) -> Any:
    """The JSON of a frame, or the string "[DONE]"."""
    data = frame.removeprefix(b"data: ").decode()
    return data if data == "[DONE]" else json.loads(data)


async def stream_events(
    redis: Any, *, conversation_id: int | None = None, user_id: int | None = None
) -> list[dict[str, Any]]:
    """The completion events on the stream for a conversation or a user, oldest first (raw JSON); an
    entry that is not an event (a test put it there) matches neither."""
    entries = await redis.xrange(COMPLETION_STREAM)
    events = [(json.loads(fields["event"]), fields) for _, fields in entries]
    return [
        {**event, "_raw": fields["event"]}
        for event, fields in events
        if (conversation_id is None or event.get("conversation_id") == conversation_id)
        and (user_id is None or event.get("user_id") == user_id)
    ]


async def wait_for_event(
    redis: Any,
    *,
    conversation_id: int | None = None,
    user_id: int | None = None,
    timeout: float = 5.0,
    settle: float = 0.3,
) -> dict[str, Any]:
    """The one event of a conversation (or user); fails when none arrives in time or more than one does."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = await stream_events(redis, conversation_id=conversation_id, user_id=user_id)
        if events:
            break
        await asyncio.sleep(0.05)
    assert events, f"no completion event for {conversation_id or user_id} within {timeout}s"
    await asyncio.sleep(settle)  # a duplicate would show up by now
    events = await stream_events(redis, conversation_id=conversation_id, user_id=user_id)
    assert len(events) == 1, events
    return events[0]


async def conversation_count(gateway: httpx.AsyncClient, user: UserSession) -> int:
    response = await gateway.get("/api/conversations", headers=user.headers)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Total-Count"])


def outbox_rows(system: System, *, user_id: int) -> list[dict[str, Any]]:
    """llm-service's outbox rows of a user: the event payload, when it was published, and the lease of a
    stream's row in flight."""
    with system.database.connect() as conn:
        rows = conn.execute(
            "SELECT payload, published_at, attempts, lease_until FROM aigcspace.llm_outbox "
            "WHERE (payload->>'user_id')::bigint = %s ORDER BY id",
            (user_id,),
        ).fetchall()
    return [
        {"payload": row[0], "published_at": row[1], "attempts": row[2], "lease_until": row[3]} for row in rows
    ]


def chat_body(content: str, *, model: str = "qwen-plus", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}
