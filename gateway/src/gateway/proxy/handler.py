"""The proxy endpoint: a plain ASGI callable, so nothing buffers a stream and per-call work stays small.

One call: authenticate the bearer token (once), read the body, send it to the service with an
internal credential and the request id, then pass the response back chunk by chunk as it arrives. A
client that goes away cancels the call at once, which closes the upstream connection, so the service
sees the disconnect too; so does a call still running when the gateway's shutdown grace runs out.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
from multidict import CIMultiDict
from shared.errors import AppError, Unauthorized
from shared.internal_http import internal_call_headers
from shared.tokens import InternalTokens
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from gateway.auth.status import ActiveUsers
from gateway.auth.tokens import INVALID_TOKEN, AccessTokens
from gateway.config import GatewaySettings
from gateway.proxy.upstreams import Upstream
from shared import service_names

logger = logging.getLogger("gateway.proxy")

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# The user's credentials stay here; the service gets the gateway's own credential and request id instead.
_DROP_FROM_REQUEST = _HOP_BY_HOP | {
    b"host",
    b"authorization",
    b"cookie",
    b"content-length",
    b"expect",
    b"x-internal-token",
    b"x-request-id",
    b"x-user-id",  # nobody downstream reads it; dropped so that nobody ever could
}
# `date`, `server` and `x-request-id` are added again by uvicorn and the request-log middleware.
_DROP_FROM_RESPONSE = _HOP_BY_HOP | {b"date", b"server", b"x-request-id", b"set-cookie"}
_EVENT_STREAM = b"text/event-stream"
_DONE_FRAME = b"data: [DONE]\n\n"
_NO_PROXY_BUFFERING = (b"x-accel-buffering", b"no")


class _Call:
    """What the disconnect watcher and the call share."""

    __slots__ = ("client_gone", "finished")

    def __init__(self) -> None:
        self.client_gone = False
        self.finished = False


class ProxyEndpoint:
    """Forwards every call routed to it to one upstream service."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        settings: GatewaySettings,
        access_tokens: AccessTokens,
        active_users: ActiveUsers,
    ) -> None:
        self.upstream = upstream
        self.access_tokens = access_tokens
        self.active_users = active_users
        self._internal_tokens = InternalTokens(
            secret=settings.internal_secret,
            audience=upstream.audience,
            caller=service_names.GATEWAY,
            ttl=settings.internal_token_ttl_seconds,
        )
        self._unavailable = f"The {upstream.label} service is unavailable."
        self._timed_out = f"The {upstream.label} service timed out."
        self._failed = f"The {upstream.label} service failed to answer."
        self._broken_stream_end = _error_frame(
            f"The {upstream.label} service stopped in the middle of the reply."
        )
        self._own_origin = upstream.base_url.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers, authorization = _split_request_headers(scope["headers"])
        user_id = self.access_tokens.user_id(authorization)
        if not await self.active_users.is_active(user_id):
            raise Unauthorized(INVALID_TOKEN)
        body = await _read_body(receive)
        if body is None:
            return  # the client left while sending
        headers.extend(internal_call_headers(self._internal_tokens, user_id).items())
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        target = self.upstream.base_url + raw_path.decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        await self._forward(scope["method"], URL(target, encoded=True), headers, body, receive, send)

    async def _forward(
        self,
        method: str,
        url: URL,
        headers: list[tuple[str, str]],
        body: bytes,
        receive: Receive,
        send: Send,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        call = _Call()
        watcher = asyncio.get_running_loop().create_task(_cancel_on_disconnect(receive, task, call))
        response: aiohttp.ClientResponse | None = None
        try:
            response = await self._open(method, url, headers, body)
            if response.status >= 500 and response.content_type != "application/json":
                # Not the service's own answer (those are in the envelope) but its server's, e.g. the
                # plain-text 500 of a request cut by a shutdown.
                logger.warning(
                    "upstream answered outside the envelope",
                    extra={"upstream": self.upstream.audience, "status": response.status},
                )
                raise AppError(502, self._failed)
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": _response_headers(response, self._own_origin),
                }
            )
            call.finished = await self._pass_body(response, send, call)
        except asyncio.CancelledError:
            if not call.client_gone:
                raise  # shutdown, not a client leaving
            task.uncancel()
        finally:
            watcher.cancel()
            if response is not None:
                if call.finished:
                    response.release()
                else:
                    response.close()  # the service sees the call end (client gone, or cut)

    async def _pass_body(self, response: aiohttp.ClientResponse, send: Send, call: _Call) -> bool:
        """Each chunk as it arrives; False when the stream was cut short, by the service breaking off or
        by the gateway's own shutdown (uvicorn cancels the calls still running once the grace is over).
        An event stream that stopped between two frames is then ended as a failure mid-stream is (an
        error frame, then `[DONE]`), one that had already sent `[DONE]` just ends; anything else can only
        be cut, the one honest signal left once the response has started."""
        tail = b"\n\n"  # the last bytes sent, enough to tell where the stream stopped
        try:
            async for chunk in response.content.iter_any():
                tail = (tail + chunk)[-len(_DONE_FRAME) :]  # before the send: cut inside it, it went out
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except aiohttp.ClientError as exc:
            logger.warning(
                "upstream stream broke",
                extra={"upstream": self.upstream.audience, "error": type(exc).__name__},
            )
            if not await _end_cut_stream(response, tail, self._broken_stream_end, send):
                raise
            return False
        except asyncio.CancelledError:
            if call.client_gone:
                raise
            # The whole frames that had arrived go out first: the service counts them as sent.
            arrived = _whole_frames(response, tail)
            tail = (tail + arrived)[-len(_DONE_FRAME) :]
            if tail != _DONE_FRAME:
                logger.warning("stream cut by the shutdown", extra={"upstream": self.upstream.audience})
            if not await _end_cut_stream(response, tail, _SHUTDOWN_STREAM_END, send, arrived=arrived):
                raise
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()  # the call ends here all the same, the upstream connection closed with it
            return False
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True

    async def _open(
        self, method: str, url: URL, headers: list[tuple[str, str]], body: bytes
    ) -> aiohttp.ClientResponse:
        """Send the call; an unreachable or silent service becomes an enveloped 503/504/502."""
        try:
            return await self.upstream.session.request(
                method,
                url,
                headers=CIMultiDict(headers),
                data=body or None,
                allow_redirects=False,
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            logger.warning(
                "upstream unreachable",
                extra={"upstream": self.upstream.audience, "error": type(exc).__name__},
            )
            raise AppError(503, self._unavailable) from None
        except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
            logger.warning(
                "upstream timed out", extra={"upstream": self.upstream.audience, "error": type(exc).__name__}
            )
            raise AppError(504, self._timed_out) from None
        except aiohttp.ClientError as exc:
            logger.warning(
                "upstream failed", extra={"upstream": self.upstream.audience, "error": type(exc).__name__}
            )
            raise AppError(502, self._failed) from None


def _error_frame(message: str) -> bytes:
    """The end of an event stream cut short: CONTRACT §2's mid-stream failure frame (with DashScope's
    code for a server-side failure), byte for byte as llm-service writes its own, and `[DONE]`."""
    error = {
        "content": "",
        "finish_reason": "error",
        "usage": None,
        "error": {"code": "InternalError", "message": message},
    }
    return b"data: " + json.dumps(error, separators=(",", ":")).encode() + b"\n\n" + _DONE_FRAME


_SHUTDOWN_STREAM_END = _error_frame("The gateway stopped in the middle of the reply.")


async def _end_cut_stream(
    response: aiohttp.ClientResponse, tail: bytes, end: bytes, send: Send, *, arrived: bytes = b""
) -> bool:
    """End a stream cut after `tail` with `arrived` (bytes not sent yet, which `tail` ends with) and `end`
    (nothing more after `[DONE]`); False when it cannot be: not an event stream, or stopped inside a
    frame."""
    if not (tail.endswith(b"\n\n") and response.content_type == _EVENT_STREAM.decode()):
        return False
    body = arrived + (b"" if tail == _DONE_FRAME else end)
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return True


def _whole_frames(response: aiohttp.ClientResponse, tail: bytes) -> bytes:
    """What of the response's buffer ends the last whole frame in it, after `tail` was sent (a frame ends
    with a blank line, which may start in `tail`)."""
    try:
        buffered = response.content.read_nowait()
    except (aiohttp.ClientError, RuntimeError):  # the stream failed meanwhile, or is being read
        return b""
    end = (tail + buffered).rfind(b"\n\n") + 2 - len(tail)
    return buffered[:end] if end > 0 else b""


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task[object], call: _Call) -> None:
    """Wait for the client to leave, then cancel the call (which closes the upstream connection)."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            if not call.finished:
                call.client_gone = True
                task.cancel()
            return


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (its size is bounded by `BodyLimitMiddleware`); None when the client left
    while sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _split_request_headers(raw: list[tuple[bytes, bytes]]) -> tuple[list[tuple[str, str]], str | None]:
    """The headers to forward and the Authorization header, in one pass."""
    forward: list[tuple[str, str]] = []
    authorization: str | None = None
    listed: list[bytes] = []
    for name, value in raw:
        if name in _DROP_FROM_REQUEST:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"connection":
                listed.extend(token.strip().lower() for token in value.split(b","))
            continue
        forward.append((name.decode("latin-1"), value.decode("latin-1")))
    if listed:
        dropped = {token.decode("latin-1") for token in listed}
        forward = [(name, value) for name, value in forward if name not in dropped]
    return forward, authorization


def _response_headers(response: aiohttp.ClientResponse, origin: bytes) -> list[tuple[bytes, bytes]]:
    """The service's headers minus hop-by-hop ones; SSE also tells any proxy in front not to buffer.

    A redirect to the service's own address becomes a path, so no internal address leaks out.
    """
    headers: list[tuple[bytes, bytes]] = []
    event_stream = buffering_said = False
    for name, value in response.raw_headers:
        lower = name.lower()
        if lower in _DROP_FROM_RESPONSE:
            continue
        if lower == b"content-type" and value.startswith(_EVENT_STREAM):
            event_stream = True
        elif lower == _NO_PROXY_BUFFERING[0]:
            buffering_said = True
        elif lower == b"location" and value.startswith(origin):
            value = value[len(origin) :] or b"/"
        headers.append((lower, value))
    if event_stream and not buffering_said:
        headers.append(_NO_PROXY_BUFFERING)
    return headers
