"""Reply end → visible: how long after a reply ends `GET /api/conversations/{id}` (through the gateway)
shows its assistant message and a bill above 0, for a sample of the replies of a sustained rate.

Two kinds of run:
- `published`: the replies' completion events are XADDed onto the stream at the target's rate, as
  llm-service publishes them the moment a reply ends, each measured one in a conversation of its own
  created through the API. This is the records path alone (stream, both consumers, the API); it is the
  only way to sustain 100 replies/s here, since the chat path itself tops out lower on two cores (the
  chat benchmark).
- `sustained`: real non-stream chats through the gateway, each in a new conversation: the whole system,
  at rates this machine can sustain."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
from llm_service.outbox import publish
from redis.asyncio import Redis

from bench.calls import Endpoints
from bench.load import send
from bench.report import percentile
from bench.stream import completion_event
from bench.users import BenchUser, create_conversations
from harness import System

RATE = 100.0  # replies per second: the target's rate
DURATION_S = 10.0
MEASURE_EVERY = 4  # poll for every 4th reply: polling each one would load the system more than the chats
SHARED_CONVERSATIONS = 50  # the replies not measured go to these (several replies per conversation)
# Real chats, at rates the whole system sustains on this machine.
CHAT_RATES, CHAT_DURATION_S, CHAT_MEASURE_EVERY = (20.0, 40.0), 5.0, 2
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
    reply_p50: float | None  # how long a chat took; None when the replies were published, not chatted

    kind: str = "chats"  # or "events": completion events published onto the stream

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
    """Seconds from the reply's end until GET shows the assistant message and a bill; inf on timeout, or
    when a poll fails (never seen visible counts as too late)."""
    deadline = reply_end + VISIBLE_TIMEOUT_S
    while time.perf_counter() < deadline:
        try:
            async with session.get(url, headers=user.headers) as response:
                if response.status == 200 and _is_visible(await response.json()):
                    return time.perf_counter() - reply_end
        except (aiohttp.ClientError, TimeoutError):
            return math.inf
        await asyncio.sleep(POLL_INTERVAL_S)
    return math.inf


async def _open_loop(
    one: Callable[[int], Coroutine[Any, Any, None]], *, count: int, rate: float
) -> tuple[float, list[asyncio.Task[None]]]:
    """Start `one(0)` … `one(count - 1)` at `rate` per second whatever the earlier ones are doing (open
    loop); when the first started, and their tasks."""
    started = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for index in range(count):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index)))
    return started, tasks


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

    started, tasks = await _open_loop(one, count=count, rate=rate)
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


async def published(
    system: System,
    session: aiohttp.ClientSession,
    redis: Redis,
    user: BenchUser,
    *,
    model_id: int,
    rate: float = RATE,
    duration: float = DURATION_S,
    measure_every: int = MEASURE_EVERY,
) -> Visibility:
    """`rate` completion events per second for `duration` seconds, open loop, each XADDed as llm-service
    does when a reply ends; every `measure_every`-th one (in its own conversation) polled until visible."""
    count = int(rate * duration)
    measured = range(0, count, measure_every)
    own = iter(await create_conversations(session, system.gateway, user, len(measured), title="visibility"))
    shared = await create_conversations(
        session, system.gateway, user, SHARED_CONVERSATIONS, title="visibility"
    )
    conversation_of = {
        i: next(own) if i % measure_every == 0 else shared[i % len(shared)] for i in range(count)
    }
    latencies: list[float] = []
    failures: list[str] = []
    last_published = 0.0

    async def one(index: int) -> None:
        nonlocal last_published
        # 200 output tokens of qwen-max bill above 0.0000.
        event = completion_event(
            user_id=user.id,
            conversation_id=conversation_of[index],
            model_id=model_id,
            model_name=MODEL,
            index=index,
            output_tokens=200,
        )
        end = time.perf_counter()  # the reply ends; llm-service publishes at once, with this function
        try:
            await publish(redis, event.to_stream_fields())
        except Exception as exc:
            failures.append(type(exc).__name__)
            return
        last_published = max(last_published, time.perf_counter())
        if index % measure_every == 0:
            url = f"{system.gateway}/api/conversations/{conversation_of[index]}"
            latencies.append(await _wait_visible(session, url, user, end))

    started, tasks = await _open_loop(one, count=count, rate=rate)
    await asyncio.gather(*tasks)
    return Visibility(
        asked_rate=rate,
        sent=count,
        errors=len(failures),
        replied=count - len(failures),
        elapsed=(last_published or time.perf_counter()) - started + 1 / rate,
        latencies=latencies,
        reply_p50=None,
        kind="events",
    )
