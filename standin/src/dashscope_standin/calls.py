"""The call log behind `/_standin/calls`: what the stand-in received and how each call ended."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

Outcome = Literal["pending", "completed", "error", "cancelled"]

MAX_CALLS = 1000


class CallRecord:
    """One received generation call; its outcome is filled in when the call ends."""

    __slots__ = ("data",)

    def __init__(
        self, *, model: Any, api_key: str, parameters: Any, message_count: int, stream: bool
    ) -> None:
        self.data: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(),
            "model": model,
            "api_key": api_key,
            "parameters": parameters,
            "message_count": message_count,
            "stream": stream,
            "outcome": "pending",
        }

    @property
    def outcome(self) -> Outcome:
        """How the call ended so far ("pending" while it runs)."""
        outcome: Outcome = self.data["outcome"]
        return outcome

    def finish(self, outcome: Outcome) -> None:
        """Set the final outcome once; later calls keep the first one."""
        if self.data["outcome"] == "pending":
            self.data["outcome"] = outcome

    @contextmanager
    def settling(self) -> Iterator[None]:
        """Guard the work of a call so that it never stays "pending".

        Handlers set "completed" or "error" themselves, before their last byte goes out, so a client
        that reads the log right after the answer sees the outcome. Anything else that ends the work
        (asyncio.CancelledError when the client disconnects, GeneratorExit when a stream is closed,
        a return after seeing the disconnect) means the client went away first; a crash is an error.
        Exceptions are always re-raised.
        """
        try:
            yield
        except Exception:
            self.finish("error")
            raise
        finally:
            self.finish("cancelled")


class CallLog:
    """The newest `MAX_CALLS` calls, oldest first; records are shared so outcomes update in place."""

    def __init__(self, max_calls: int = MAX_CALLS) -> None:
        self._calls: deque[CallRecord] = deque(maxlen=max_calls)

    def record(
        self, *, model: Any, api_key: str, parameters: Any, message_count: int, stream: bool
    ) -> CallRecord:
        """Log a call as it arrives, before anything can fail, so every call is visible."""
        call = CallRecord(
            model=model, api_key=api_key, parameters=parameters, message_count=message_count, stream=stream
        )
        self._calls.append(call)
        return call

    def snapshot(self) -> list[dict[str, Any]]:
        """Copies of the records, newest last."""
        return [dict(call.data) for call in self._calls]

    def clear(self) -> None:
        """Forget every call."""
        self._calls.clear()
