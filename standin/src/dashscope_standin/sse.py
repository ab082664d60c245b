"""A streaming response for SSE that stops its stream as soon as the client disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from dashscope_standin.protocol import SSE_CONTENT_TYPE


class EventStreamResponse(StreamingResponse):
    """Sends each frame as its own HTTP chunk; a client that goes away cancels the stream.

    Starlette's StreamingResponse does the same with an anyio task group, which costs about 0.3 ms
    of CPU per request (measured: 1,000 short streams took 0.55 s of CPU instead of 0.22 s). Here a
    plain asyncio task waits for `http.disconnect` and cancels the task that streams. The frame
    generator is always closed at the end, so its `finally` runs at once and the call log is right.
    """

    def __init__(self, frames: AsyncGenerator[bytes, None], headers: Mapping[str, str]) -> None:
        super().__init__(frames, headers=headers, media_type=SSE_CONTENT_TYPE)
        self._frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None
        client_gone = False

        async def watch() -> None:
            nonlocal client_gone
            while (await receive())["type"] != "http.disconnect":
                pass
            client_gone = True
            streaming.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            if not client_gone:
                raise  # cancelled by someone else (e.g. shutdown)
            streaming.uncancel()
        finally:
            # Cancel first, synchronously: once the response is complete the server reports a
            # disconnect too, and the watcher must not cancel a response that already ended.
            watcher.cancel()
            await self._frames.aclose()
