"""Calls between services: a pooled aiohttp client that signs each call with an internal credential."""

from __future__ import annotations

from typing import Any

import aiohttp

from shared.logging import REQUEST_ID_HEADER, request_id_var
from shared.tokens import INTERNAL_TOKEN_HEADER, InternalTokens

# How long every service keeps an idle client connection open (uvicorn's keep-alive).
SERVER_KEEPALIVE_SECONDS = 5
# Clients drop idle pooled connections a second earlier, so a connection is never reused just as the
# server hangs up (the call would fail with a reset).
KEEPALIVE_SECONDS = SERVER_KEEPALIVE_SECONDS - 1.0


def internal_call_headers(tokens: InternalTokens, user_id: int) -> dict[str, str]:
    """The headers of a call made for `user_id`: the credential, and the id of the request being served
    (so one request can be followed through every service's log)."""
    headers = {INTERNAL_TOKEN_HEADER: tokens.for_user(user_id)}
    request_id = request_id_var.get()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return headers


class InternalClient:
    """Talks to one service on behalf of a user; the credential names that user and that service."""

    def __init__(
        self,
        *,
        base_url: str,
        audience: str,
        caller: str,
        secret: str,
        ttl: int,
        timeout: aiohttp.ClientTimeout | None = None,
        limit: int = 0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = InternalTokens(secret=secret, audience=audience, caller=caller, ttl=ttl)
        # sock_connect, not connect: waiting for one of the pooled connections is not a failure to connect
        self._timeout = timeout or aiohttp.ClientTimeout(total=10, sock_connect=2)
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=KEEPALIVE_SECONDS),
                timeout=self._timeout,
                auto_decompress=False,
            )
        return self._session

    async def request_json(
        self, method: str, path: str, *, user_id: int, json: Any = None
    ) -> tuple[int, Any]:
        """Send one call and return its status and decoded envelope."""
        async with self.session.request(
            method, self.base_url + path, json=json, headers=internal_call_headers(self._tokens, user_id)
        ) as response:
            body = await response.json(content_type=None)
            return response.status, body

    async def request_status(self, method: str, path: str, *, user_id: int) -> int:
        """Send one call that needs only its answer's status (a HEAD, say)."""
        async with self.session.request(
            method, self.base_url + path, headers=internal_call_headers(self._tokens, user_id)
        ) as response:
            return response.status

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
