"""Every process answers /healthz; /readyz is 200 only while its database and Redis are reachable."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from testkit import System, free_port

SERVICES = ("gateway", "llm", "conversation", "billing")


async def _statuses(system: System, path: str, names: tuple[str, ...], method: str = "GET") -> dict[str, int]:
    async with httpx.AsyncClient(timeout=10) as client:
        responses = await asyncio.gather(*(client.request(method, system.url(name) + path) for name in names))
    return {name: response.status_code for name, response in zip(names, responses, strict=True)}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_every_process_is_alive_and_ready(system: System, method: str) -> None:
    names = (*SERVICES, "standin")
    assert await _statuses(system, "/healthz", names, method) == dict.fromkeys(names, 200)
    assert await _statuses(system, "/readyz", names, method) == dict.fromkeys(names, 200)


async def test_readiness_names_an_unreachable_database(system: System) -> None:
    unreachable = {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    await asyncio.to_thread(system.stop, "billing")
    try:
        await asyncio.to_thread(system.start, "billing", extra_env=unreachable)
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(system.url("billing") + "/readyz")
    finally:
        await asyncio.to_thread(system.stop, "billing")
        await asyncio.to_thread(system.start, "billing")
    assert response.json() == {"code": 503, "message": "Not ready: database unreachable.", "data": None}
    assert response.headers["retry-after"] == "5"


async def test_readiness_follows_redis(system: System) -> None:
    system.redis.stop()
    try:
        assert await _statuses(system, "/readyz", SERVICES) == dict.fromkeys(SERVICES, 503)
        assert await _statuses(system, "/healthz", SERVICES) == dict.fromkeys(SERVICES, 200)
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(system.url("billing") + "/readyz")
        assert response.json() == {"code": 503, "message": "Not ready: Redis unreachable.", "data": None}
        assert response.headers["retry-after"] == "5"
    finally:
        system.redis.start()
    # Connections the restart dropped are still pooled: the first probe must not fail on one of them.
    assert await _statuses(system, "/readyz", SERVICES) == dict.fromkeys(SERVICES, 200)
