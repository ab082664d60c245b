"""The load generator: one aiohttp session without a connection limit, closed-loop workers, and the
timing of each call (time to the first body bytes, time to the end)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from shared.internal_http import KEEPALIVE_SECONDS

from bench.report import percentile

# One call may not take longer than this; a level as a whole is bounded separately.
CALL_TIMEOUT_S = 60.0


def new_session() -> aiohttp.ClientSession:
    """The load generator's one session: no connection limit, so N workers hold N connections; idle ones
    dropped before the servers' keep-alive (5 s) ends, so no call is sent on a closing connection."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS),
        timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


# A body is good when this returns None, else it returns what was wrong.
BodyCheck = Callable[[int, bytes], str | None]


@dataclass(frozen=True)
class Call:
    """One request, sent the same way every time; `check` judges the status and the whole body."""

    url: str
    body: bytes
    headers: dict[str, str]
    check: BodyCheck

    @classmethod
    def json(cls, url: str, payload: dict[str, Any], headers: dict[str, str], check: BodyCheck) -> Call:
        return cls(url, json.dumps(payload).encode(), {**headers, "Content-Type": "application/json"}, check)


@dataclass(frozen=True)
class Sample:
    """One call: seconds from sending to the first body bytes and to the end; an error or None."""

    ttfb: float
    total: float
    error: str | None
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""


async def send(session: aiohttp.ClientSession, call: Call, *, keep_body: bool = False) -> Sample:
    """Send one call and time it."""
    start = time.perf_counter()
    first = None
    chunks: list[bytes] = []
    try:
        async with session.post(call.url, data=call.body, headers=call.headers) as response:
            async for chunk in response.content.iter_any():
                if first is None:
                    first = time.perf_counter()
                chunks.append(chunk)
            end = time.perf_counter()
            body = b"".join(chunks)
            error = call.check(response.status, body)
            headers = {k.lower(): v for k, v in response.headers.items()}
    except (aiohttp.ClientError, TimeoutError) as exc:
        end = time.perf_counter()
        return Sample(end - start, end - start, f"{type(exc).__name__}")
    ttfb = (first if first is not None else end) - start
    return Sample(ttfb, end - start, error, headers, body if keep_body else b"")


@dataclass
class LevelResult:
    """Every call of one run at one concurrency, and how long the run took."""

    samples: list[Sample]
    wall: float

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.error is None]

    @property
    def errors(self) -> int:
        return len(self.samples) - len(self.ok)

    @property
    def per_second(self) -> float:
        return len(self.ok) / self.wall if self.wall > 0 else 0.0

    def ttfb(self, q: float) -> float:
        return percentile([s.ttfb for s in self.ok], q)

    def total(self, q: float) -> float:
        return percentile([s.total for s in self.ok], q)

    def first_errors(self, limit: int = 3) -> list[str]:
        seen: list[str] = []
        for sample in self.samples:
            if sample.error is not None and sample.error not in seen:
                seen.append(sample.error)
            if len(seen) >= limit:
                break
        return seen


async def run_level(
    session: aiohttp.ClientSession,
    call: Call,
    *,
    concurrency: int,
    count: int,
    timeout: float,
    send_for: float | None = None,
) -> LevelResult:
    """`concurrency` workers send up to `count` calls in all, each worker one call after another; the
    wall time runs from the first send to the last end. With `send_for`, no call is started after that
    many seconds (a slow system gets fewer calls, not a longer run). Bounded by `timeout` as a whole."""
    remaining = count
    samples: list[Sample] = []
    start = time.perf_counter()
    stop_sending = start + send_for if send_for is not None else math.inf

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < stop_sending:
            remaining -= 1
            samples.append(await send(session, call))

    tasks = [asyncio.create_task(worker()) for _ in range(min(concurrency, count))]
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    wall = time.perf_counter() - start
    in_flight = len(pending)  # one unfinished call per cancelled worker
    samples += [Sample(wall, wall, "level timeout")] * in_flight
    return LevelResult(samples=samples, wall=wall)


async def run_interleaved(
    session: aiohttp.ClientSession,
    calls: dict[str, Call],
    *,
    count: int,
    timeout: float,
    settle: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, LevelResult]:
    """One call at a time, taking the paths in turn `count` times (starting with a different one each
    round), so that a change in the machine's background load weighs on every path alike; `settle`
    runs after each call, so no call pays for the work its predecessor left behind. A path's wall time
    is the sum of its own calls."""
    samples: dict[str, list[Sample]] = {name: [] for name in calls}
    order = list(calls)
    deadline = time.perf_counter() + timeout
    for round_ in range(count):
        if time.perf_counter() > deadline:
            break
        shift = round_ % len(order)
        for name in order[shift:] + order[:shift]:
            samples[name].append(await send(session, calls[name]))
            if settle is not None:
                await settle()
    return {name: LevelResult(runs, wall=sum(s.total for s in runs)) for name, runs in samples.items()}
