"""Stopping work the client no longer waits for: DashScope is not kept answering a caller that left."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.errors import AppError
from starlette.types import Receive

T = TypeVar("T")

# Resolves when the client has disconnected (for a request: its ASGI `http.disconnect`).
Disconnected = Callable[[], Awaitable[object]]


class ClientGone(AppError):
    """The client disconnected before the reply started; nobody reads this answer."""

    def __init__(self) -> None:
        super().__init__(499, "The client closed the request before the reply started.")


async def unless_client_leaves(work: Awaitable[T], disconnected: Disconnected) -> T:
    """Await `work`, cancelling it (and so its upstream call) as soon as the client disconnects."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if task.cancelled():
        raise ClientGone
    return task.result()


def request_disconnected(receive: Receive) -> Disconnected:
    """A `Disconnected` for an ASGI request whose body has been read: the next message it gets is
    `http.disconnect`."""

    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    return wait
