"""The completion stream as the benchmarks watch it: how far behind each consumer group is."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from shared.events import (
    BILLING_GROUP,
    COMPLETION_STREAM,
    CONVERSATION_GROUP,
    CompletionEvent,
    StoredMessage,
    Usage,
)

GROUPS = (CONVERSATION_GROUP, BILLING_GROUP)


@dataclass(frozen=True)
class GroupState:
    """XINFO GROUPS for one group: the last entry handed to a consumer, and how many are unacked."""

    last_delivered: str
    pending: int
    lag: int | None  # entries not yet delivered (Redis 7); None when Redis cannot tell


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair."""
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


async def group_states(redis: Redis) -> dict[str, GroupState]:
    """Each consumer group of the completion stream (missing when it does not exist yet)."""
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(COMPLETION_STREAM)
    except Exception:  # no stream yet
        return {}
    return {
        str(g["name"]): GroupState(
            last_delivered=str(g["last-delivered-id"]),
            pending=int(g["pending"]),
            lag=int(g["lag"]) if g.get("lag") is not None else None,
        )
        for g in groups
    }


def caught_up(state: GroupState | None, last_id: str) -> bool:
    """Every entry up to `last_id` delivered and acknowledged."""
    return state is not None and state.pending == 0 and entry_key(state.last_delivered) >= entry_key(last_id)


async def last_entry_id(redis: Redis) -> str | None:
    entries = await redis.xrevrange(COMPLETION_STREAM, count=1)
    return str(entries[0][0]) if entries else None


async def wait_idle(redis: Redis, *, timeout: float) -> bool:
    """Wait (at most `timeout` s) until both groups have handled everything on the stream so far."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = await last_entry_id(redis)
        if last is None:
            return True
        states = await group_states(redis)
        if all(caught_up(states.get(group), last) for group in GROUPS):
            return True
        await asyncio.sleep(0.1)
    return False


def completion_event(
    *, user_id: int, conversation_id: int, model_id: int, model_name: str, index: int, output_tokens: int
) -> CompletionEvent:
    """A finished reply as llm-service publishes it: one user message of 20 tokens, an answer of
    `output_tokens` characters (the stand-in counts a character a token)."""
    answer = f"bench answer {index} "
    return CompletionEvent(
        user_id=user_id,
        conversation_id=conversation_id,
        model_id=model_id,
        model_name=model_name,
        request_id=f"bench-{index}",
        messages_to_store=[StoredMessage(role="user", content=f"bench question {index}")],
        assistant_content=answer + "x" * max(0, output_tokens - len(answer)),
        finish_reason="stop",
        status="completed",
        usage=Usage(input_tokens=20, output_tokens=output_tokens, total_tokens=20 + output_tokens),
    )
