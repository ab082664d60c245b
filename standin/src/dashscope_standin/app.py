"""The stand-in's HTTP app: DashScope's native text-generation endpoint plus a call log for tests."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncGenerator
from typing import Any
from uuid import uuid4

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashscope_standin.calls import CallLog, CallRecord
from dashscope_standin.plan import BadRequest, Plan, make_plan, message_count
from dashscope_standin.protocol import JSON_CONTENT_TYPE, FrameBuilder, error_body, error_for, result_body
from dashscope_standin.settings import Settings
from dashscope_standin.sse import EventStreamResponse

GENERATION_PATH = "/api/v1/services/aigc/text-generation/generation"
HEALTHY = {"code": 200, "message": "success", "data": {"status": "ok"}}
# How often a call that is waiting (stall, paced non-stream reply) checks whether its client left.
DISCONNECT_POLL_S = 0.1


def _api_key(authorization: str | None) -> str:
    """The key of an `Authorization: Bearer <key>` header, or "" when there is none."""
    scheme, _, key = (authorization or "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


async def _client_left(request: Request, seconds: float) -> bool:
    """Wait up to `seconds` (may be infinite); True as soon as the client has disconnected."""
    if seconds <= 0:
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await request.is_disconnected():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(remaining, DISCONNECT_POLL_S))
    return True


def _error(call: CallRecord, request_id: str, code: str, message: str | None = None) -> Response:
    """A DashScope error response; the call's outcome is "error"."""
    status, default_message = error_for(code)
    call.finish("error")
    return Response(
        error_body(code, message or default_message, request_id),
        status_code=status,
        media_type=JSON_CONTENT_TYPE,
        headers={"x-request-id": request_id},
    )


async def _stream(
    call: CallRecord, plan: Plan, request_id: str, chunk_chars: int
) -> AsyncGenerator[bytes, None]:
    """The SSE frames of a streamed reply, paced; one yielded item becomes one HTTP chunk.

    Pieces are due every `delay_s` from the start, so a busy event loop does not stretch the
    stream; with no delay, sleep(0) still yields so a long stream cannot starve the others.
    A client that disconnects cancels this generator (see EventStreamResponse).
    """
    with call.settling():
        frames = FrameBuilder(
            message_format=plan.message_format, input_tokens=plan.input_tokens, request_id=request_id
        )
        reply, directives = plan.reply, plan.directives
        pieces = math.ceil(len(reply) / chunk_chars)
        if directives.midstream_error:
            pieces = max(1, pieces // 2)
        elif directives.stall:
            pieces = min(2, pieces)
        loop = asyncio.get_running_loop()
        due = loop.time()
        sent = event_id = 0
        for event_id in range(1, pieces + 1):
            due += plan.delay_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            start, sent = sent, min(sent + chunk_chars, len(reply))
            content = reply[start:sent] if plan.incremental else reply[:sent]
            yield frames.result(event_id, content, sent)
        if directives.midstream_error:
            call.finish("error")
            yield frames.error(event_id + 1, directives.midstream_error)
        elif directives.stall:
            await asyncio.Event().wait()  # never set: only the client leaving ends this
        else:
            call.finish("completed")
            final = "" if plan.incremental else reply
            yield frames.result(event_id + 1, final, sent, plan.finish_reason)


async def _complete(
    request: Request, call: CallRecord, plan: Plan, request_id: str, chunk_chars: int
) -> Response:
    """A non-stream reply, after as long as streaming it would have taken (forever for a stall)."""
    with call.settling():
        pieces = math.ceil(len(plan.reply) / chunk_chars)
        wait = math.inf if plan.directives.stall else plan.delay_s * pieces
        if await _client_left(request, wait):
            return Response(status_code=204)  # nobody reads it; the outcome is "cancelled"
        call.finish("completed")
        body = result_body(
            text=plan.reply,
            finish_reason=plan.finish_reason,
            message_format=plan.message_format,
            input_tokens=plan.input_tokens,
            request_id=request_id,
        )
        return Response(body, media_type=JSON_CONTENT_TYPE, headers={"x-request-id": request_id})


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; each app has its own call log."""
    settings = settings or Settings.from_env()
    calls = CallLog()

    async def health(request: Request) -> Response:
        """Alive (there is nothing else to be ready for)."""
        return JSONResponse(HEALTHY)

    async def generation(request: Request) -> Response:
        """DashScope's native text generation, streamed only with `X-DashScope-SSE: enable`."""
        request_id = str(uuid4())
        stream = request.headers.get("x-dashscope-sse", "").strip().lower() == "enable"
        body: Any
        try:
            body = json.loads(await request.body())
            # JSON may spell lone surrogates ("\\ud800"): not text, so refused like a malformed body.
            json.dumps(body, ensure_ascii=False).encode()
        except ValueError:  # UnicodeEncodeError included
            body = None
        fields = body if isinstance(body, dict) else {}
        api_key = _api_key(request.headers.get("authorization"))
        call = calls.record(
            model=fields.get("model"),
            api_key=api_key,
            parameters=fields.get("parameters", {}),
            message_count=message_count(body),
            stream=stream,
        )
        if not api_key or api_key.startswith("invalid"):
            return _error(call, request_id, "InvalidApiKey")
        try:
            plan = make_plan(body, settings)
        except BadRequest as exc:
            return _error(call, request_id, exc.code, exc.message)
        directives = plan.directives
        failure = directives.error or (None if stream else directives.midstream_error)
        if failure:
            return _error(call, request_id, failure)
        if not stream:
            return await _complete(request, call, plan, request_id, settings.chunk_chars)
        return EventStreamResponse(
            _stream(call, plan, request_id, settings.chunk_chars),
            headers={"x-request-id": request_id, "cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def list_calls(request: Request) -> Response:
        """The calls received, newest last (a plain list, for tests)."""
        return JSONResponse(calls.snapshot())

    async def clear_calls(request: Request) -> Response:
        """Forget all calls."""
        calls.clear()
        return JSONResponse({"code": 200, "message": "success", "data": None})

    return Starlette(
        routes=[
            Route("/healthz", health, methods=["GET"]),
            Route("/readyz", health, methods=["GET"]),
            Route(GENERATION_PATH, generation, methods=["POST"]),
            Route("/_standin/calls", list_calls, methods=["GET"]),
            Route("/_standin/calls", clear_calls, methods=["DELETE"]),
        ]
    )


app = create_app()
