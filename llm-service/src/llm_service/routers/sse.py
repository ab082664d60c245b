"""The SSE response of a chat stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

SSE_CONTENT_TYPE = "text/event-stream"


class EventStreamResponse(StreamingResponse):
    """`text/event-stream`, unbuffered; the frames' generator is always closed when the response ends.

    Starlette cancels the sending task when the client disconnects; if that happens while a frame is
    being sent (not while the generator awaits DashScope), the generator would be left suspended until
    garbage collection. Closing it here runs its cleanup (stop DashScope, record the event) at once.
    """

    def __init__(self, frames: AsyncIterator[bytes], *, headers: dict[str, str]) -> None:
        # An explicit Content-Type: Starlette would otherwise append "; charset=utf-8".
        super().__init__(
            frames,
            headers={
                "Content-Type": SSE_CONTENT_TYPE,
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                **headers,
            },
        )
        self._frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self._frames, "aclose", None)
                if aclose is not None:
                    await aclose()
