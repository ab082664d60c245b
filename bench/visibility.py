"""Reply end → visible: non-stream chats through the gateway at a sustained rate, each in a new
conversation, and for a sample of them the time from the end of the reply until
`GET /api/conversations/{id}` shows the assistant message and a bill above 0."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from decimal import Decimal

import aiohttp

from bench.calls import Endpoints
from bench.load import send
from bench.report import percentile
from bench.users import BenchUser
from harness import System

RATE = 100.0  # replies per second: the target's rate
DURATION_S = 10.0
MEASURE_EVERY = 4  # poll for every 4th reply: polling each one would load the system more than the chats
# A second, gentler run shows the delay when the system is not saturated.
GENTLE_RATE, GENTLE_DURATION_S, GENTLE_MEASURE_EVERY = 20.0, 5.0, 2
POLL_INTERVAL_S = 0.025
VISIBLE_TIMEOUT_S = 10.0
MAX_IN_FLIGHT = 400  # chats waiting for their reply; beyond it the schedule slips (and the rate shows it)
MODEL = "qwen-max"  # priced high enough that 200 output tokens bill more than 0.0000
CONTENT = "Visibility check. [[tokens:200]]"


@dataclass
class Visibility:
    """The sustained run: replies sent, failed, and the measured reply-end → visible latencies (a
    reply not visible within `VISIBLE_TIMEOUT_S` counts as infinitely late)."""

    asked_rate: float
    sent: int
    errors: int
    replied: int
    elapsed: float
    latencies: list[float]
    reply_p50: float

    @property
    def rate(self) -> float:
        return self.replied / self.elapsed if self.elapsed else 0.0

    @property
    def timeouts(self) -> int:
        return sum(1 for latency in self.latencies if math.isinf(latency))

    def latency(self, q: float) -> float:
        return percentile(self.latencies, q)


def _is_visible(payload: dict[str, object]) -> bool:
    data = payload.get("data")
    if not isinstance(data, dict):
        return False
    messages = data.get("messages") or []
    has_reply = any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)
    return has_reply and Decimal(str(data.get("bill") or "0")) > 0


async def _wait_visible(session: aiohttp.ClientSession, url: str, user: BenchUser, reply_end: float) -> float:
    """Seconds from the reply's end until GET shows the assistant message and a bill; inf on timeout."""
    deadline = reply_end + VISIBLE_TIMEOUT_S
    while time.perf_counter() < deadline:
        async with session.get(url, headers=user.headers) as response:
            if response.status == 200 and _is_visible(await response.json()):
                return time.perf_counter() - reply_end
        await asyncio.sleep(POLL_INTERVAL_S)
    return math.inf


async def sustained(
    system: System,
    session: aiohttp.ClientSession,
    user: BenchUser,
    *,
    rate: float = RATE,
    duration: float = DURATION_S,
    measure_every: int = MEASURE_EVERY,
) -> Visibility:
    """`rate` chats per second for `duration` seconds, open loop; every `measure_every`-th reply is
    polled until visible."""
    call = Endpoints(system, user).call("gateway", CONTENT, stream=False, model=MODEL)
    count = int(rate * duration)
    latencies: list[float] = []
    reply_times: list[float] = []
    failures: list[str] = []
    last_end = 0.0
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def one(index: int) -> None:
        nonlocal last_end
        async with in_flight:
            sample = await send(session, call)
        end = time.perf_counter()
        if sample.error is not None:
            failures.append(sample.error)
            return
        last_end = max(last_end, end)
        reply_times.append(sample.total)
        if index % measure_every == 0:
            url = f"{system.gateway}/api/conversations/{sample.headers.get('x-conversation-id')}"
            latencies.append(await _wait_visible(session, url, user, end))

    started = time.perf_counter()
    tasks = []
    for index in range(count):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index)))
    _, pending = await asyncio.wait(tasks, timeout=duration + VISIBLE_TIMEOUT_S + 30)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for error in sorted(set(failures))[:3]:
        print(f"  chat failed: {error}")
    return Visibility(
        asked_rate=rate,
        sent=count,
        errors=len(failures) + len(pending),
        replied=len(reply_times),
        elapsed=(last_end or time.perf_counter()) - started,
        latencies=latencies,
        reply_p50=percentile(reply_times, 50),
    )
