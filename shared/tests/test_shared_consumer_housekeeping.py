"""A consumer forgets the group's consumer names whose processes are gone, and runs the service's own
clean-up; a live consumer, and one with entries pending, are kept."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis
from shared.events import CompletionEvent
from shared.messaging import ConsumerOptions, StreamConsumer

from testkit import RedisServer


async def _ignore(_events: list[CompletionEvent]) -> None:
    return None


async def _forgotten(url: str, *, forget_idle_ms: int) -> tuple[list[str], list[str], int]:
    stream, group = f"test:housekeeping:{uuid.uuid4().hex}", "housekeeping"
    cleanups = 0

    async def cleanup() -> None:
        nonlocal cleanups
        cleanups += 1

    async with Redis.from_url(url, decode_responses=True) as redis:
        consumer = StreamConsumer(
            redis,
            group=group,
            handler=_ignore,
            stream=stream,
            name="alive",
            options=ConsumerOptions(forget_consumer_idle_ms=forget_idle_ms),
            housekeeping=cleanup,
        )
        await consumer.ensure_group()
        await redis.xadd(stream, {"event": "{}"})
        await redis.xreadgroup(group, "crashed-holding-an-entry", {stream: ">"}, count=1)  # left pending
        await redis.xgroup_createconsumer(stream, group, "gone")  # nothing pending
        await redis.xgroup_createconsumer(stream, group, "alive")
        await asyncio.sleep(0.05)
        await consumer.housekeep()
        remaining = sorted(str(c["name"]) for c in await redis.xinfo_consumers(stream, group))
        await redis.delete(stream)
    forgotten = sorted({"alive", "crashed-holding-an-entry", "gone"} - set(remaining))
    return forgotten, remaining, cleanups


def test_a_consumer_idle_past_the_limit_with_nothing_pending_is_forgotten(redis_server: RedisServer) -> None:
    forgotten, remaining, cleanups = asyncio.run(_forgotten(redis_server.url, forget_idle_ms=10))
    assert forgotten == ["gone"]
    assert remaining == ["alive", "crashed-holding-an-entry"]
    assert cleanups == 1


def test_consumers_idle_less_than_the_limit_are_kept(redis_server: RedisServer) -> None:
    forgotten, _, cleanups = asyncio.run(_forgotten(redis_server.url, forget_idle_ms=3_600_000))
    assert forgotten == []
    assert cleanups == 1
