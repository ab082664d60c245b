"""The DashScope wrapper with the real SDK against answers the stand-in does not give (a tiny fake
upstream), and its error mapping for codes the stand-in never sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from llm_service.services.dashscope_client import (
    INCOMPLETE_STREAM_CODE,
    ChatParams,
    DashScopeClient,
    DashScopeError,
    classify,
    proxy_for,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PARAMS = ChatParams(model="qwen-plus", messages=[{"role": "user", "content": "hi"}])


def _event(content: str, finish_reason: str, output_tokens: int) -> bytes:
    data = {
        "output": {
            "choices": [
                {"finish_reason": finish_reason, "message": {"role": "assistant", "content": content}}
            ]
        },
        "usage": {"input_tokens": 2, "output_tokens": output_tokens, "total_tokens": 2 + output_tokens},
        "request_id": "req-1",
    }
    return f"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{json.dumps(data)}\n\n".encode()


@pytest.fixture
async def upstream() -> AsyncIterator[Callable[[Handler], Awaitable[DashScopeClient]]]:
    """Serve one handler on a free port; a client pointed at it."""
    runners: list[web.AppRunner] = []
    clients: list[DashScopeClient] = []

    async def serve(handler: Handler) -> DashScopeClient:
        app = web.Application()
        app.router.add_post("/api/v1/services/aigc/text-generation/generation", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        client = DashScopeClient(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            connect_timeout=2,
            first_token_timeout=5,
            idle_timeout=5,
            request_timeout=5,
        )
        clients.append(client)
        return client

    yield serve
    for client in clients:
        await client.close()
    for runner in runners:
        await runner.cleanup()


async def test_a_stream_that_ends_without_a_finish_reason_is_an_error(
    upstream: Callable[[Handler], Awaitable[DashScopeClient]],
) -> None:
    async def truncated(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream;charset=UTF-8"})
        await response.prepare(request)
        await response.write(_event("Hel", "null", 3))
        await response.write_eof()  # and no final event
        return response

    client = await upstream(truncated)
    stream = await client.open_stream(api_key="sk-x", params=PARAMS)
    first = await stream.__anext__()
    assert (first.content, first.finish_reason, first.usage and first.usage.output_tokens) == ("Hel", None, 3)
    with pytest.raises(DashScopeError) as failure:
        await stream.__anext__()
    assert (failure.value.code, failure.value.status) == (INCOMPLETE_STREAM_CODE, 502)
    await stream.aclose()


async def test_a_finished_stream_stops_after_its_final_chunk(
    upstream: Callable[[Handler], Awaitable[DashScopeClient]],
) -> None:
    async def whole(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream;charset=UTF-8"})
        await response.prepare(request)
        await response.write(_event("Hel", "null", 3))
        await response.write(_event("lo", "stop", 5))  # the last piece comes with the finish reason
        await response.write_eof()
        return response

    client = await upstream(whole)
    stream = await client.open_stream(api_key="sk-x", params=PARAMS)
    chunks = [chunk async for chunk in stream]
    assert [(c.content, c.finish_reason) for c in chunks] == [("Hel", None), ("lo", "stop")]
    await stream.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_non_json_gateway_error_is_502(
    upstream: Callable[[Handler], Awaitable[DashScopeClient]], stream: bool
) -> None:
    async def bad_gateway(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")

    client = await upstream(bad_gateway)
    with pytest.raises(DashScopeError) as failure:
        if stream:
            await client.open_stream(api_key="sk-x", params=PARAMS)
        else:
            await client.complete(api_key="sk-x", params=PARAMS)
    assert failure.value.status == 502
    assert failure.value.message == "DashScope failed (Unknown): <html>Bad Gateway</html>"


async def test_a_key_echoed_by_dashscope_is_never_repeated(
    upstream: Callable[[Handler], Awaitable[DashScopeClient]],
) -> None:
    async def echoing(request: web.Request) -> web.Response:
        key = request.headers["Authorization"].removeprefix("Bearer ")
        body = {"code": "InvalidParameter", "message": f"bad call with {key}", "request_id": "r"}
        return web.json_response(body, status=400)

    client = await upstream(echoing)
    with pytest.raises(DashScopeError) as failure:
        await client.complete(api_key="sk-secret-1234", params=PARAMS)
    assert "sk-secret-1234" not in failure.value.message
    assert failure.value.message == "DashScope refused the request (InvalidParameter): bad call with ***"


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("InvalidApiKey", 401, "key_rejected"),
        ("InvalidApiKey", None, "key_rejected"),  # inside a stream
        ("Unknown", 401, "key_rejected"),
        ("Throttling", 429, "throttled"),
        ("Throttling.AllocationQuota", None, "throttled"),
        ("InvalidParameter", 400, "bad_request"),
        ("Arrearage", 400, "bad_request"),
        ("AccessDenied", 403, "bad_request"),
        ("ModelNotFound", 404, "bad_request"),
        ("RequestTimeOut", 408, "timeout"),
        ("InternalError", None, "upstream"),  # inside a stream: by code alone
        ("InternalError.Algo", None, "upstream"),
        ("SystemError", None, "upstream"),
        ("ModelUnavailable", 503, "upstream"),
        ("Unknown", 502, "upstream"),
        ("SomethingNew", 500, "upstream"),
    ],
)
def test_dashscope_codes_map_to_the_contract(code: str, status: int | None, kind: str) -> None:
    assert classify(code, status) == kind


def _proxy_environment(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Exactly these proxy variables (any of the machine's own removed)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


async def test_the_proxy_named_by_the_environment_carries_the_calls(
    upstream: Callable[[Handler], Awaitable[DashScopeClient]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY is honoured (looked up once per session): DashScope's host cannot be resolved here, so
    the reply can only come through the proxy, which sees the absolute URL."""
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.StreamResponse:
        seen.append(str(request.url))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream;charset=UTF-8"})
        await response.prepare(request)
        await response.write(_event("Hi", "stop", 2))
        await response.write_eof()
        return response

    proxied = await upstream(proxy)
    _proxy_environment(monkeypatch, HTTP_PROXY=proxied.base_url.removesuffix("/api/v1"))
    client = DashScopeClient(
        base_url="http://dashscope.invalid/api/v1",
        connect_timeout=2,
        first_token_timeout=5,
        idle_timeout=5,
        request_timeout=5,
    )
    try:
        stream = await client.open_stream(api_key="sk-x", params=PARAMS)
        assert [chunk.content async for chunk in stream] == ["Hi"]
        await stream.aclose()
    finally:
        await client.close()
    assert seen == ["http://dashscope.invalid/api/v1/services/aigc/text-generation/generation"]


@pytest.mark.parametrize(
    ("no_proxy", "url", "expected"),
    [
        ("", "https://dashscope.aliyuncs.com/api/v1", "http://proxy.test:3128"),
        ("aliyuncs.com", "https://dashscope.aliyuncs.com/api/v1", None),
        ("", "http://127.0.0.1:8090/api/v1", None),  # no HTTP_PROXY for plain http here
    ],
)
def test_proxy_for_follows_https_proxy_and_no_proxy(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str, expected: str | None
) -> None:
    _proxy_environment(monkeypatch, HTTPS_PROXY="http://proxy.test:3128", NO_PROXY=no_proxy)
    assert proxy_for(url) == expected
