"""`python -m bench.proxy_app`: a bare one-hop proxy in front of the stand-in, to compare HTTP clients.

BENCH_PROXY_CLIENT (`aiohttp` or `httpx`) picks the client, BENCH_PROXY_PORT the port on 127.0.0.1,
BENCH_PROXY_UPSTREAM the stand-in's base URL. Each POST is forwarded with its body and the headers
DashScope needs, and the response is passed back chunk by chunk, as the gateway does.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from harness import LOCALHOST, raise_open_file_limit

FORWARDED = ("authorization", "content-type", "x-dashscope-sse")
Forward = Callable[[str, bytes, dict[str, str]], Coroutine[Any, Any, Response]]


class AiohttpForwarder:
    """One aiohttp session without a connection limit, as the gateway has."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def forward(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        assert self.session is not None
        upstream = await self.session.post(self.upstream + path, data=body, headers=headers)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.content.iter_any():
                    yield chunk
            finally:
                upstream.release()

        return StreamingResponse(
            chunks(), status_code=upstream.status, media_type=upstream.headers.get("Content-Type")
        )


class HttpxForwarder:
    """One pooled httpx.AsyncClient, with pool limits high enough never to queue a stream."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        limits = httpx.Limits(max_connections=5000, max_keepalive_connections=5000)
        self.client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(None))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def forward(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        assert self.client is not None
        request = self.client.build_request("POST", self.upstream + path, content=body, headers=headers)
        upstream = await self.client.send(request, stream=True)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        return StreamingResponse(
            chunks(), status_code=upstream.status_code, media_type=upstream.headers.get("content-type")
        )


def create_app(client: str, upstream: str) -> Starlette:
    forwarder = AiohttpForwarder(upstream) if client == "aiohttp" else HttpxForwarder(upstream)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await forwarder.start()
        try:
            yield
        finally:
            await forwarder.close()

    async def forward(request: Request) -> Response:
        body = await request.body()
        headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
        return await forwarder.forward(request.url.path, body, headers)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/{path:path}", forward, methods=["POST"])],
        lifespan=lifespan,
    )


def main() -> None:
    client = os.environ.get("BENCH_PROXY_CLIENT", "aiohttp")
    if client not in ("aiohttp", "httpx"):
        raise SystemExit(f"BENCH_PROXY_CLIENT must be aiohttp or httpx, got {client!r}")
    app = create_app(client, os.environ["BENCH_PROXY_UPSTREAM"])
    raise_open_file_limit()
    uvicorn.run(
        app,
        host=LOCALHOST,
        port=int(os.environ["BENCH_PROXY_PORT"]),
        access_log=False,
        log_level="warning",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
