"""DashScope through the official SDK's asynchronous API (`AioGeneration`).

No thread is held per call: the SDK reads SSE from aiohttp, so hundreds of streams share one event loop.
The API key is passed with every call (the caller's own key; there is no global key), and so is the
base URL, so nothing depends on environment variables the SDK reads at import.

Errors are mapped to CONTRACT §2 here, by DashScope's `code` (an error inside a stream has no
meaningful HTTP status) and, for an error answered before any stream, also by the HTTP status.

Timeouts, all ours because the SDK replaces any session timeout with its own per-request one:
- connect: from the call until the TCP connection exists (seen through an aiohttp trace);
- first token: from the call until a stream's first event;
- idle: the longest silence between two events of a running stream;
- request: the whole of a non-stream call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

import aiohttp
import certifi
from dashscope import AioGeneration
from dashscope.api_entities.aio_session import close_shared_aio_session
from shared.db import storable_text
from shared.errors import AppError
from shared.events import Usage

logger = logging.getLogger("llm_service.dashscope")

ErrorKind = Literal["key_rejected", "throttled", "bad_request", "upstream", "unreachable", "timeout"]

_STATUS_OF_KIND: dict[ErrorKind, int] = {
    "key_rejected": 400,
    "throttled": 429,
    "bad_request": 400,
    "upstream": 502,
    "unreachable": 502,
    "timeout": 504,
}
# Codes DashScope uses for its own failures; inside a stream they arrive without their HTTP status.
_SERVER_ERROR_CODES = ("InternalError", "SystemError", "ModelUnavailable", "ServiceUnavailable", "Unknown")
_UNFINISHED = ("null", "")  # DashScope's "not finished yet" finish_reason values (besides None)
_MAX_MESSAGE_CHARS = 300

# Idle connections to DashScope are dropped after this (aiohttp's default), below the keep-alive of
# front proxies (60–75 s is usual; the stand-in keeps 75 s), so none is reused as the server closes it,
# and a TLS handshake is not repeated after every short pause.
DASHSCOPE_KEEPALIVE_S = 15.0

# Our own codes for stream failures DashScope does not name.
TIMEOUT_CODE = "RequestTimeOut"  # DashScope's own code for a timeout
INCOMPLETE_STREAM_CODE = "IncompleteStream"
NETWORK_ERROR_CODE = "NetworkError"
MALFORMED_CODE = "MalformedResponse"


class DashScopeError(AppError):
    """A DashScope call that failed; `status` and `message` are what our caller sees (CONTRACT §2).

    `code` and `upstream_message` are DashScope's own (or ours for timeouts and broken streams), as put
    into the error frame of a stream that had started.
    """

    def __init__(self, *, kind: ErrorKind, code: str, upstream_message: str, request_id: str = "") -> None:
        self.kind = kind
        self.code = code
        self.upstream_message = upstream_message
        self.request_id = request_id
        super().__init__(_STATUS_OF_KIND[kind], _public_message(kind, code, upstream_message))


def _public_message(kind: ErrorKind, code: str, message: str) -> str:
    if kind == "key_rejected":
        return (
            "Your DashScope API key was rejected by DashScope: set a valid one with PUT /api/users/me/apikey."
        )
    if kind == "throttled":
        return f"DashScope is throttling requests ({code}): {message}"
    if kind == "bad_request":
        return f"DashScope refused the request ({code}): {message}"
    if kind == "upstream":
        return f"DashScope failed ({code}): {message}"
    if kind == "unreachable":
        return "DashScope could not be reached."
    return f"DashScope did not answer in time: {message}"


def classify(code: str, status: int | None) -> ErrorKind:
    """CONTRACT §2 by DashScope's code first; the HTTP status only where it is meaningful (not in streams)."""
    if code == "InvalidApiKey" or status == HTTPStatus.UNAUTHORIZED:
        return "key_rejected"
    if code.startswith("Throttling"):
        return "throttled"
    if code == TIMEOUT_CODE:
        return "timeout"
    if (status is not None and status >= 500) or code.startswith(_SERVER_ERROR_CODES):
        return "upstream"
    return "bad_request"


def _clean(text: Any, *, secret: str) -> str:
    """One short line of DashScope's text, with the caller's key scrubbed should it ever be echoed."""
    line = re.sub(r"\s+", " ", str(text or "")).strip()
    if secret:
        line = line.replace(secret, "***")
    if len(line) > _MAX_MESSAGE_CHARS:
        line = line[: _MAX_MESSAGE_CHARS - 1] + "…"
    return line or "no details given."


@dataclass(frozen=True)
class ChatParams:
    """What reaches DashScope; None parameters are not sent at all."""

    model: str
    messages: list[dict[str, str]]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class Chunk:
    """One event of a stream: the text delta, the finish reason on the last, the cumulative usage."""

    content: str
    finish_reason: str | None
    usage: Usage | None
    request_id: str

    @property
    def is_final(self) -> bool:
        return self.finish_reason is not None


@dataclass(frozen=True)
class Completion:
    """A whole (non-stream) reply."""

    content: str
    finish_reason: str | None
    usage: Usage
    request_id: str


@dataclass
class _CallState:
    """What the aiohttp trace learns about one call (found through a context variable)."""

    deadline: asyncio.Timeout | None = None
    after_connect: float | None = None  # loop time the deadline moves to once connected
    connected: bool = False
    response: aiohttp.ClientResponse | None = None

    def drop_connection(self) -> None:
        """Close the HTTP response at once (synchronous, so it works while being cancelled)."""
        if self.response is not None and not self.response.closed:
            self.response.close()


_current_call: ContextVar[_CallState | None] = ContextVar("dashscope_call", default=None)


async def _on_connected(_session: aiohttp.ClientSession, _ctx: Any, _params: Any) -> None:
    call = _current_call.get()
    if call is not None and not call.connected:
        call.connected = True
        if call.deadline is not None and call.after_connect is not None:
            call.deadline.reschedule(call.after_connect)


async def _on_request_end(
    _session: aiohttp.ClientSession, _ctx: Any, params: aiohttp.TraceRequestEndParams
) -> None:
    call = _current_call.get()
    if call is not None:
        call.response = params.response


def _trace_config() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(_on_connected)
    trace.on_connection_reuseconn.append(_on_connected)
    trace.on_request_end.append(_on_request_end)
    return trace


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping) or "input_tokens" not in raw:
        return None
    input_tokens = int(raw.get("input_tokens") or 0)
    output_tokens = int(raw.get("output_tokens") or 0)
    total = raw.get("total_tokens")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=int(total) if total is not None else input_tokens + output_tokens,
    )


def _first_choice(response: Any) -> tuple[str, str | None]:
    """Content and finish reason of `result_format="message"` output (None while not finished).

    The content as PostgreSQL can store it (a NUL becomes U+FFFD), so that what the client is sent is
    what the conversation keeps.
    """
    output = response.get("output") or {}
    choices = output.get("choices") or []
    if not choices:
        raise ValueError("DashScope output has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content") or ""
    if not isinstance(content, str):  # multimodal-style list of parts
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    finish = choice.get("finish_reason")
    return storable_text(content), (None if finish in (None, *_UNFINISHED) else str(finish))


class ChatStream:
    """A running DashScope stream, its first event already received.

    Iterating yields that first chunk and every later one, and stops after the chunk that carries the
    finish reason. Anything else that ends it (an error frame, a silence longer than the idle timeout,
    a broken connection, an end without a finish reason) raises `DashScopeError`.
    """

    def __init__(
        self, generator: AsyncIterator[Any], call: _CallState, *, idle_timeout: float, api_key: str
    ) -> None:
        self._generator = generator
        self._call = call
        self._idle_timeout = idle_timeout
        self._api_key = api_key
        self._pending: Chunk | None = None
        self._finished = False  # the final chunk was read
        self._exhausted = False  # the SDK generator ended or failed
        self.request_id = ""

    async def _receive_first(self) -> None:
        self._pending = await self._read(first=True)

    @property
    def unread(self) -> Chunk | None:
        """The first event while it has not been iterated yet."""
        return self._pending

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> Chunk:
        if self._pending is not None:
            chunk, self._pending = self._pending, None
        elif self._finished:
            raise StopAsyncIteration
        else:
            try:
                async with asyncio.timeout(self._idle_timeout):
                    chunk = await self._read(first=False)
            except TimeoutError:
                self.abort()
                raise DashScopeError(
                    kind="timeout",
                    code=TIMEOUT_CODE,
                    upstream_message=f"DashScope sent nothing for {self._idle_timeout:g} s.",
                    request_id=self.request_id,
                ) from None
        if chunk.is_final:
            self._finished = True
        return chunk

    async def _read(self, *, first: bool) -> Chunk:
        """The next event as a chunk; DashScope's errors, broken streams and early ends raise."""
        try:
            response = await self._generator.__anext__()
        except StopAsyncIteration:
            self._exhausted = True
            raise DashScopeError(
                kind="upstream",
                code=INCOMPLETE_STREAM_CODE,
                upstream_message="DashScope ended the stream without finishing the reply.",
                request_id=self.request_id,
            ) from None
        except TimeoutError:  # aiohttp's own socket-read backstop (ours cancel instead)
            self._exhausted = True
            raise DashScopeError(
                kind="timeout",
                code=TIMEOUT_CODE,
                upstream_message="DashScope stopped sending.",
                request_id=self.request_id,
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            self._exhausted = True
            if first and not self._call.connected:
                raise _unreachable(exc) from None
            raise DashScopeError(
                kind="upstream",
                code=NETWORK_ERROR_CODE,
                upstream_message=f"The connection to DashScope broke ({type(exc).__name__}).",
                request_id=self.request_id,
            ) from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self._exhausted = True
            raise _malformed(exc, self.request_id) from None
        self.request_id = str(response.get("request_id") or self.request_id)
        if response.status_code != HTTPStatus.OK:
            http = self._call.response
            # Before the stream, the HTTP status is DashScope's; inside it, it means nothing.
            status = http.status if http is not None and http.status != HTTPStatus.OK else None
            raise _from_error_response(response, status=status, api_key=self._api_key)
        try:
            content, finish_reason = _first_choice(response)
        except (ValueError, TypeError, AttributeError) as exc:
            raise _malformed(exc, self.request_id) from None
        return Chunk(
            content=content,
            finish_reason=finish_reason,
            usage=_usage(response.get("usage")),
            request_id=self.request_id,
        )

    def abort(self) -> None:
        """Drop the HTTP connection at once (synchronous, so it works while being cancelled)."""
        self._call.drop_connection()

    async def aclose(self) -> None:
        """Release the call: read a finished stream to its end (the connection can then be reused),
        or drop the connection of an unfinished one; then close the SDK's generator."""
        if self._finished and not self._exhausted:
            try:
                async with asyncio.timeout(1.0):
                    async for _ in self._generator:  # DashScope sends nothing after the final event
                        pass
            except Exception:
                self.abort()
        self.abort()
        self._exhausted = True
        aclose = getattr(self._generator, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:
                logger.debug("closing the SDK stream failed", exc_info=True)


def _from_error_response(response: Any, *, status: int | None, api_key: str) -> DashScopeError:
    code = str(response.get("code") or "Unknown")
    message = _clean(response.get("message"), secret=api_key)
    if status is None and response.status_code >= 500 and code == "Unknown":
        status = int(response.status_code)  # the SDK's own marker for a non-JSON event
    return DashScopeError(
        kind=classify(code, status),
        code=code,
        upstream_message=message,
        request_id=str(response.get("request_id") or ""),
    )


def _unreachable(exc: BaseException) -> DashScopeError:
    return DashScopeError(
        kind="unreachable",
        code=NETWORK_ERROR_CODE,
        upstream_message=f"The connection to DashScope failed ({type(exc).__name__}).",
    )


def _malformed(exc: BaseException, request_id: str) -> DashScopeError:
    logger.warning("malformed DashScope response", extra={"error": repr(exc)[:300]})
    return DashScopeError(
        kind="upstream",
        code=MALFORMED_CODE,
        upstream_message="DashScope sent a response that could not be read.",
        request_id=request_id,
    )


def _timeout(call: _CallState, *, waited_for: str, seconds: float, connect_seconds: float) -> DashScopeError:
    if not call.connected:
        waited_for, seconds = "connection", connect_seconds
    return DashScopeError(
        kind="timeout", code=TIMEOUT_CODE, upstream_message=f"no {waited_for} within {seconds:g} s."
    )


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTP_PROXY / HTTPS_PROXY, unless NO_PROXY covers its
    host), or None."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class DashScopeClient:
    """Calls DashScope for a user with that user's key; one pooled aiohttp session for all calls."""

    def __init__(
        self,
        *,
        base_url: str,
        connect_timeout: float,
        first_token_timeout: float,
        idle_timeout: float,
        request_timeout: float,
        max_connections: int = 0,
    ) -> None:
        self.base_url = base_url
        self.connect_timeout = connect_timeout
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        """Our own session: no 100-connection cap (the SDK's default) and the trace for our timeouts.

        HTTP(S)_PROXY and NO_PROXY are honoured as the SDK does, but looked up once: aiohttp's
        `trust_env` would look them up, and read ~/.netrc in a worker thread, on every call. (So proxy
        credentials go in the proxy URL, `http://user:password@proxy:3128`; ~/.netrc is not read.)
        """
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections,
                    ssl=ssl.create_default_context(cafile=certifi.where()),
                    keepalive_timeout=DASHSCOPE_KEEPALIVE_S,
                ),
                trace_configs=[_trace_config()],
                proxy=proxy_for(self.base_url),
            )
        return self._session

    async def close(self) -> None:
        """Close our session and the SDK's shared one (should anything have created it)."""
        if self._session is not None:
            await self._session.close()
        await close_shared_aio_session()

    def _sdk_arguments(self, *, api_key: str, params: ChatParams) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": params.model,
            "messages": params.messages,
            "api_key": api_key,
            "base_address": self.base_url,
            "result_format": "message",
            "session": self._http(),
        }
        for name in ("temperature", "top_p", "max_tokens"):
            value = getattr(params, name)
            if value is not None:
                arguments[name] = value
        return arguments

    async def complete(self, *, api_key: str, params: ChatParams) -> Completion:
        """One whole reply; raises `DashScopeError` (already mapped to CONTRACT §2) on any failure."""
        call = _CallState()
        token = _current_call.set(call)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout) as deadline:
                call.deadline = deadline
                call.after_connect = loop.time() + self.request_timeout
                response: Any = await AioGeneration.call(
                    **self._sdk_arguments(api_key=api_key, params=params),
                    request_timeout=self.request_timeout,
                )
        except TimeoutError:
            raise _timeout(
                call,
                waited_for="reply",
                seconds=self.request_timeout,
                connect_seconds=self.connect_timeout,
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _unreachable(exc) from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _malformed(exc, "") from None
        except asyncio.CancelledError:  # the caller left: DashScope stops answering at once
            call.drop_connection()
            raise
        finally:
            _current_call.reset(token)
        request_id = str(response.get("request_id") or "")
        if response.status_code != HTTPStatus.OK:
            raise _from_error_response(response, status=int(response.status_code), api_key=api_key)
        try:
            content, finish_reason = _first_choice(response)
        except (ValueError, TypeError, AttributeError) as exc:
            raise _malformed(exc, request_id) from None
        usage = _usage(response.get("usage")) or Usage(input_tokens=0, output_tokens=0, total_tokens=0)
        return Completion(content=content, finish_reason=finish_reason, usage=usage, request_id=request_id)

    async def open_stream(self, *, api_key: str, params: ChatParams) -> ChatStream:
        """Start a stream (`incremental_output=True`) and wait for its first event.

        Raises `DashScopeError` when DashScope fails before that event, so the caller can still answer
        with a plain JSON error.
        """
        call = _CallState()
        token = _current_call.set(call)
        loop = asyncio.get_running_loop()
        # The SDK's socket-read timeout is only a backstop behind our first-token and idle timeouts.
        backstop = math.ceil(max(self.first_token_timeout, self.idle_timeout)) + 5
        stream: ChatStream | None = None
        try:
            async with asyncio.timeout(self.connect_timeout) as deadline:
                call.deadline = deadline
                call.after_connect = loop.time() + self.first_token_timeout
                generator: Any = await AioGeneration.call(
                    **self._sdk_arguments(api_key=api_key, params=params),
                    stream=True,
                    incremental_output=True,
                    request_timeout=backstop,
                )
                stream = ChatStream(generator, call, idle_timeout=self.idle_timeout, api_key=api_key)
                await stream._receive_first()
        except TimeoutError:
            if stream is not None:
                stream.abort()
            raise _timeout(
                call,
                waited_for="first event",
                seconds=self.first_token_timeout,
                connect_seconds=self.connect_timeout,
            ) from None
        except DashScopeError:
            if stream is not None:
                stream.abort()
            raise
        except (aiohttp.ClientError, OSError) as exc:
            raise _unreachable(exc) from None
        except asyncio.CancelledError:  # the caller left before the first event
            call.drop_connection()
            raise
        finally:
            _current_call.reset(token)
            call.deadline = None
        return stream
