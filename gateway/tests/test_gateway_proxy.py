"""The proxy, observed from the other side: a second gateway process whose three services are one
recording HTTP server in this test, so each test sees exactly what the gateway sent upstream, when it
sent it, and when it hung up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web

from harness import spawn, stop_process
from testkit import System, UserSession, free_port, make_user, wait_http

MAX_BODY = 4096


@dataclass
class Recorder:
    """What the upstream saw, and the gates that hold its streams."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    hung_up: dict[str, asyncio.Event] = field(default_factory=dict)

    def gate(self, key: str) -> asyncio.Event:
        return self.gates.setdefault(key, asyncio.Event())

    def hang_up(self, key: str) -> asyncio.Event:
        return self.hung_up.setdefault(key, asyncio.Event())


def build_upstream(recorder: Recorder) -> web.Application:
    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body": body.decode("utf-8", "replace"),
        }
        recorder.requests.append(seen)
        return web.json_response(
            seen,
            status=201 if request.method == "POST" else 200,
            headers={
                "X-Total-Count": "7",
                "X-Conversation-Id": "42",
                "Set-Cookie": "upstream=1",
                "X-Request-Id": "upstream-own-id",
            },
        )

    async def gated_stream(request: web.Request) -> web.StreamResponse:
        """Frame 1, then wait for the test to open the gate, then frame 2."""
        key = request.match_info["key"]
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Conversation-Id": "9",
            }
        )
        await response.prepare(request)
        await response.write(b'data: {"content": "one"}\n\n')
        await recorder.gate(key).wait()
        await response.write(b'data: {"content": "two"}\n\n')
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def endless_stream(request: web.Request) -> web.StreamResponse:
        """A frame every 20 ms until the gateway closes the connection."""
        key = request.match_info["key"]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            while True:
                await response.write(b'data: {"content": "x"}\n\n')
                await asyncio.sleep(0.02)
        except (ConnectionError, RuntimeError):
            recorder.hang_up(key).set()
        return response

    async def silent(request: web.Request) -> web.StreamResponse:
        """Send nothing until the gateway closes the connection (or the test opens the gate)."""
        key = request.match_info["key"]
        gate = recorder.gate(key)
        while not gate.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                recorder.hang_up(key).set()
                return web.Response(status=499)
            await asyncio.sleep(0.02)
        return web.json_response({"late": True})

    async def broken_stream(request: web.Request) -> web.StreamResponse:
        """One frame (or one and a half), then the connection drops (a service that crashed mid-reply)."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        where = request.match_info["where"]
        if where == "split-frame-end":  # the frame's blank line arrives in a chunk of its own
            await response.write(b'data: {"content": "half"}\n')
            await asyncio.sleep(0.05)
            await response.write(b"\n")
        else:
            await response.write(b'data: {"content": "half"}\n\n')
        if where == "mid-frame":
            await response.write(b'data: {"cont')
        elif where == "after-done":
            await response.write(b"data: [DONE]\n\n")
        await asyncio.sleep(0.1)
        assert request.transport is not None
        request.transport.close()
        return response

    async def crash(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, text="Internal Server Error")

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect(f"http://{request.host}/api/llm/target?a=1")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("GET", "/api/llm/redirect", redirect)
    app.router.add_route("GET", "/api/llm/crash", crash)
    app.router.add_route("GET", "/api/llm/broken/{where}", broken_stream)
    app.router.add_route("GET", "/api/llm/gated/{key}", gated_stream)
    app.router.add_route("GET", "/api/llm/endless/{key}", endless_stream)
    app.router.add_route("*", "/api/llm/silent/{key}", silent)
    app.router.add_route("*", "/api/conversations/silent/{key}", silent)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@dataclass
class EchoGateway:
    url: str
    recorder: Recorder
    log_path: str


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()
    runner = web.AppRunner(build_upstream(recorder), access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}", recorder
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def echo_gateway(system: System, upstream: tuple[str, Recorder]) -> AsyncIterator[EchoGateway]:
    """A gateway process like the system's, but with every service being the recording upstream."""
    base, recorder = upstream
    port = free_port()
    env = {
        **system.env,
        "GATEWAY_PORT": str(port),
        "LLM_SERVICE_URL": base,
        "CONVERSATION_SERVICE_URL": base,
        "BILLING_SERVICE_URL": base,
        "MAX_BODY_BYTES": str(MAX_BODY),
        "UPSTREAM_READ_TIMEOUT_SECONDS": "3",
        "UPSTREAM_DATA_READ_TIMEOUT_SECONDS": "1",
    }
    process = spawn("gateway", env=env, workdir=system.workdir, log_name="gateway-echo")
    try:
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz", 60.0, process)
        yield EchoGateway(
            url=f"http://127.0.0.1:{port}",
            recorder=recorder,
            log_path=str(system.workdir / "gateway-echo.log"),
        )
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
async def caller(system: System) -> UserSession:
    async with httpx.AsyncClient(base_url=system.gateway, timeout=30) as client:
        return await make_user(client, apikey=None)


@pytest.fixture
async def client(echo_gateway: EchoGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=echo_gateway.url, timeout=10) as http:
        yield http


def seen_headers(data: dict[str, Any]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in data["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    return headers


async def test_path_query_method_and_body_are_forwarded_unchanged(
    client: httpx.AsyncClient, caller: UserSession
) -> None:
    raw = "/api/conversations/12/messages?limit=5&limit=6&q=a%2Fb%20c&empty="
    response = await client.request("PATCH", raw, content=b'{"x": 1}', headers=caller.headers)
    assert response.status_code == 200
    data = response.json()
    assert data["method"] == "PATCH"
    assert data["raw_path"] == raw
    assert data["body"] == '{"x": 1}'


async def test_credentials_are_replaced_by_an_internal_token_for_the_service(
    client: httpx.AsyncClient, caller: UserSession, system: System
) -> None:
    forged = jwt.encode({"sub": "1", "aud": "llm-service"}, "forged" * 8, "HS256")
    cases = {
        "/api/llm/anything": "llm-service",
        "/api/conversations": "conversation-service",
        "/api/conversations/3": "conversation-service",
        "/api/billing/summary": "billing-service",
    }
    for path, audience in cases.items():
        response = await client.get(
            path,
            headers={
                **caller.headers,
                "Cookie": "session=abc",
                "X-Internal-Token": forged,
                "X-Custom": "kept",
                "Proxy-Authorization": "Basic eDp5",
            },
        )
        headers = seen_headers(response.json())
        assert "authorization" not in headers and "cookie" not in headers
        assert "proxy-authorization" not in headers
        assert headers["x-custom"] == ["kept"]
        assert len(headers["x-internal-token"]) == 1 and headers["x-internal-token"][0] != forged
        claims = jwt.decode(
            headers["x-internal-token"][0],
            system.env["INTERNAL_SECRET"],
            algorithms=["HS256"],
            audience=audience,
            issuer="aigcspace-internal",
        )
        assert claims["sub"] == str(caller.id) and claims["caller"] == "gateway"
        assert 0 < claims["exp"] - claims["iat"] <= 60


async def test_the_request_id_goes_upstream_and_comes_back_once(
    client: httpx.AsyncClient, caller: UserSession
) -> None:
    response = await client.get("/api/llm/x", headers={**caller.headers, "X-Request-Id": "trace-proxy-1"})
    assert seen_headers(response.json())["x-request-id"] == ["trace-proxy-1"]
    assert response.headers.get_list("x-request-id") == ["trace-proxy-1"]


async def test_a_request_id_is_minted_when_none_is_given(
    client: httpx.AsyncClient, caller: UserSession
) -> None:
    response = await client.get("/api/llm/x", headers=caller.headers)
    sent = seen_headers(response.json())["x-request-id"]
    assert len(sent) == 1 and sent[0]
    assert response.headers.get_list("x-request-id") == sent


async def test_status_and_service_headers_come_back(client: httpx.AsyncClient, caller: UserSession) -> None:
    response = await client.post("/api/conversations", json={"title": "t"}, headers=caller.headers)
    assert response.status_code == 201
    assert response.headers["x-total-count"] == "7"
    assert response.headers["x-conversation-id"] == "42"
    assert response.headers["content-type"].startswith("application/json")
    assert "set-cookie" not in response.headers


async def test_a_redirect_to_the_service_itself_becomes_a_path(
    client: httpx.AsyncClient, caller: UserSession, echo_gateway: EchoGateway
) -> None:
    response = await client.get("/api/llm/redirect", headers=caller.headers)
    assert response.status_code == 307
    assert response.headers["location"] == "/api/llm/target?a=1"


async def test_a_stream_frame_reaches_the_client_before_the_next_exists(
    client: httpx.AsyncClient, caller: UserSession, echo_gateway: EchoGateway
) -> None:
    gate = echo_gateway.recorder.gate("first-frame")
    async with client.stream("GET", "/api/llm/gated/first-frame", headers=caller.headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["x-conversation-id"] == "9"
        assert "content-encoding" not in response.headers
        chunks = response.aiter_bytes()
        first = await asyncio.wait_for(anext(chunks), timeout=5)
        assert first == b'data: {"content": "one"}\n\n'  # while the upstream is still held at the gate
        gate.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert rest == b'data: {"content": "two"}\n\ndata: [DONE]\n\n'


async def test_a_client_leaving_a_stream_closes_the_upstream_call(
    client: httpx.AsyncClient, caller: UserSession, echo_gateway: EchoGateway
) -> None:
    hung_up = echo_gateway.recorder.hang_up("leave-stream")
    async with client.stream("GET", "/api/llm/endless/leave-stream", headers=caller.headers) as response:
        await anext(response.aiter_bytes())
    assert not hung_up.is_set()
    await asyncio.wait_for(hung_up.wait(), timeout=3)


@pytest.mark.parametrize("where", ["between-frames", "split-frame-end"])
async def test_a_stream_broken_off_between_frames_ends_with_an_error_frame(
    client: httpx.AsyncClient, caller: UserSession, where: str
) -> None:
    """As a failure mid-stream does (CONTRACT §2): the client can tell it from a finished reply."""
    response = await client.get(f"/api/llm/broken/{where}", headers=caller.headers)
    frames = response.content.split(b"\n\n")
    assert frames[0] == b'data: {"content": "half"}'
    assert json.loads(frames[1].removeprefix(b"data: ")) == {
        "content": "",
        "finish_reason": "error",
        "usage": None,
        "error": {"code": "InternalError", "message": "The LLM service stopped in the middle of the reply."},
    }
    assert frames[2:] == [b"data: [DONE]", b""]


async def test_a_stream_broken_off_after_done_just_ends(
    client: httpx.AsyncClient, caller: UserSession
) -> None:
    """The reply was whole: no error frame after its `[DONE]`."""
    response = await client.get("/api/llm/broken/after-done", headers=caller.headers)
    assert response.content == b'data: {"content": "half"}\n\ndata: [DONE]\n\n'


async def test_a_stream_broken_off_inside_a_frame_is_cut_for_the_client_too(
    client: httpx.AsyncClient, caller: UserSession
) -> None:
    """No frame can follow half a frame: the one signal left is to cut the connection."""
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("GET", "/api/llm/broken/mid-frame", headers=caller.headers) as response:
            async for chunk in response.aiter_bytes():
                received += chunk
    assert received == b'data: {"content": "half"}\n\ndata: {"cont'


async def test_a_plain_text_server_error_becomes_a_502_in_the_envelope(
    client: httpx.AsyncClient, caller: UserSession
) -> None:
    """What uvicorn answers for a request its shutdown cut short is not the service's envelope."""
    response = await client.get("/api/llm/crash", headers=caller.headers)
    assert response.status_code == 502
    assert response.json() == {"code": 502, "message": "The LLM service failed to answer.", "data": None}


async def test_a_client_leaving_before_the_first_byte_closes_the_upstream_call(
    echo_gateway: EchoGateway, caller: UserSession
) -> None:
    hung_up = echo_gateway.recorder.hang_up("leave-early")
    async with httpx.AsyncClient(base_url=echo_gateway.url) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/api/llm/silent/leave-early", headers=caller.headers, json={}, timeout=0.3)
    # Well before the gateway's own 3 s read timeout would have closed it anyway.
    await asyncio.wait_for(hung_up.wait(), timeout=1.5)


async def test_a_silent_service_is_504_after_the_read_timeout(
    client: httpx.AsyncClient, caller: UserSession
) -> None:
    started = time.monotonic()
    response = await client.get("/api/llm/silent/never", headers=caller.headers)
    assert response.status_code == 504
    assert response.json() == {"code": 504, "message": "The LLM service timed out.", "data": None}
    assert time.monotonic() - started < 8


async def test_a_silent_conversation_service_is_a_504_sooner_than_a_silent_llm_service(
    client: httpx.AsyncClient, caller: UserSession
) -> None:
    """Only chat may be silent for minutes; conversation- and billing-service answer from their database
    (a frozen one used to hold every call for the five minutes a chat may take)."""
    started = time.monotonic()
    response = await client.get("/api/conversations/silent/never", headers=caller.headers)
    assert response.status_code == 504
    assert response.json() == {"code": 504, "message": "The conversation service timed out.", "data": None}
    assert time.monotonic() - started < 2.5  # its own 1 s, not the LLM service's 3 s


async def test_a_body_over_the_limit_is_413_by_its_length(
    client: httpx.AsyncClient, caller: UserSession
) -> None:
    response = await client.post("/api/llm/chat", content=b"x" * (MAX_BODY + 1), headers=caller.headers)
    assert response.status_code == 413
    assert response.json()["code"] == 413 and response.json()["data"] is None


async def test_a_chunked_body_over_the_limit_is_413_by_counting(
    client: httpx.AsyncClient, caller: UserSession
) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"y" * 1024

    response = await client.post("/api/llm/chat", content=body(), headers=caller.headers)
    assert response.status_code == 413
    assert response.json() == {"code": 413, "message": "The request body is too large.", "data": None}
    assert response.headers["x-request-id"]


async def test_a_body_at_the_limit_passes(client: httpx.AsyncClient, caller: UserSession) -> None:
    response = await client.post("/api/llm/chat", content=b"z" * MAX_BODY, headers=caller.headers)
    assert response.status_code == 201
    assert len(response.json()["body"]) == MAX_BODY


async def test_many_streams_at_once_each_get_their_frames(
    client: httpx.AsyncClient, caller: UserSession, echo_gateway: EchoGateway
) -> None:
    async def one(i: int) -> bytes:
        async with client.stream("GET", f"/api/llm/gated/many-{i}", headers=caller.headers) as response:
            return await response.aread()

    tasks = [asyncio.create_task(one(i)) for i in range(50)]
    await asyncio.sleep(0.3)
    for i in range(50):
        echo_gateway.recorder.gate(f"many-{i}").set()
    bodies = await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)
    assert all(body.endswith(b"data: [DONE]\n\n") for body in bodies)


def test_no_key_or_password_in_the_log(echo_gateway: EchoGateway, caller: UserSession) -> None:
    with open(echo_gateway.log_path, errors="replace") as log:
        text = log.read()
    assert caller.token not in text and caller.password not in text
