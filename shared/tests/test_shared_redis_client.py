"""The Redis client every process uses does not fail a command for a connection Redis has dropped."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis
from shared.messaging import connect_redis

from testkit import RedisServer


async def _get_after_the_connection_is_killed(url: str) -> str | None:
    key = f"test:dropped:{uuid.uuid4().hex}"
    redis = connect_redis(url)
    try:
        await redis.set(key, "kept", ex=60)
        pooled = await redis.client_id()  # the one pooled connection
        async with Redis.from_url(url) as admin:
            assert await admin.client_kill_filter(_id=pooled) == 1  # as a Redis restart would
        return await redis.get(key)
    finally:
        await redis.aclose()


def test_a_command_on_a_connection_redis_dropped_is_sent_again(redis_server: RedisServer) -> None:
    assert asyncio.run(_get_after_the_connection_is_killed(redis_server.url)) == "kept"
