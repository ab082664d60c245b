"""A bench user, registered and logged in through the gateway like any client, with a stand-in key."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import aiohttp

PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway user of a throwaway database
APIKEY = "sk-bench-standin-key"


@dataclass(frozen=True)
class BenchUser:
    id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def _json(response: aiohttp.ClientResponse, expected: int) -> dict[str, object]:
    payload = await response.json()
    if response.status != expected:
        raise RuntimeError(f"{response.method} {response.url.path}: {response.status} {payload}")
    data = payload["data"]
    assert isinstance(data, dict)
    return data


async def register(session: aiohttp.ClientSession, gateway: str) -> BenchUser:
    """Register, log in and set the DashScope key (the stand-in accepts any key)."""
    username = f"bench_{uuid.uuid4().hex[:10]}"
    credentials = {"username": username, "password": PASSWORD}
    async with session.post(f"{gateway}/api/auth/register", json=credentials) as response:
        created = await _json(response, 201)
    async with session.post(f"{gateway}/api/auth/login", json=credentials) as response:
        login = await _json(response, 200)
    user = BenchUser(id=int(str(created["id"])), token=str(login["access_token"]))
    async with session.put(
        f"{gateway}/api/users/me/apikey", json={"apikey": APIKEY}, headers=user.headers
    ) as response:
        await _json(response, 200)
    return user


async def create_conversations(
    session: aiohttp.ClientSession, gateway: str, user: BenchUser, count: int, *, title: str = "bench"
) -> list[int]:
    """`count` new conversations of the user through the API (20 requests at a time), their ids."""
    limit = asyncio.Semaphore(20)

    async def create(index: int) -> int:
        async with (
            limit,
            session.post(
                f"{gateway}/api/conversations", json={"title": f"{title} {index}"}, headers=user.headers
            ) as response,
        ):
            return int(str((await _json(response, 201))["id"]))

    return list(await asyncio.gather(*(create(i) for i in range(count))))
