"""Consumers benchmark: events per second through each consumer group, and how long after a reply ends
its messages and bill are visible through the API, at a sustained 100 replies per second."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp
from redis.asyncio import Redis
from shared.events import (
    COMPLETION_STREAM,
    DEAD_LETTER_STREAM,
    STREAM_MAX_LEN,
    CompletionEvent,
)

from bench import stream, visibility
from bench.load import new_session
from bench.report import Scorecard, mib, ms, table
from bench.users import BenchUser, create_conversations, register
from harness import ProcessUsage, ResourceSampler, System

EVENTS = 1000
EVENTS_TIMEOUT_S = 45.0
CONVERSATIONS = 50
VISIBILITY_TARGET_S = 1.0
GROUP_PROCESS = {"conversation-service": "conversation", "billing-service": "billing"}


def model_id(system: System, name: str) -> int:
    with system.database.connect() as conn:
        row = conn.execute("SELECT id FROM aigcspace.model WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise RuntimeError(f"model {name} is not in the demo data")
    return int(row[0])


def _events(user: BenchUser, conversations: list[int], model: int) -> list[CompletionEvent]:
    """Completed replies spread over the conversations, as llm-service would publish them."""
    return [
        stream.completion_event(
            user_id=user.id,
            conversation_id=conversations[i % len(conversations)],
            model_id=model,
            model_name="qwen-turbo",
            index=i,
            output_tokens=104,
        )
        for i in range(EVENTS)
    ]


async def _publish(redis: Redis, entries: list[Any]) -> str:
    """XADD every entry, pipelined; the last entry's id."""
    last_id = ""
    for offset in range(0, len(entries), 250):
        async with redis.pipeline(transaction=False) as pipe:
            for fields in entries[offset : offset + 250]:
                pipe.xadd(COMPLETION_STREAM, fields, maxlen=STREAM_MAX_LEN, approximate=True)
            last_id = str((await pipe.execute())[-1])
    return last_id


async def _time_groups(redis: Redis, started: float, last_id: str) -> dict[str, tuple[int, float]]:
    """Per group: how many of the events it acknowledged, and in how many seconds since `started`
    (all of them when it finished within `EVENTS_TIMEOUT_S`, else what it managed in that time)."""
    finished: dict[str, float] = {}
    states: dict[str, stream.GroupState] = {}
    deadline = time.monotonic() + EVENTS_TIMEOUT_S
    while len(finished) < len(stream.GROUPS) and time.monotonic() < deadline:
        states = await stream.group_states(redis)
        for group in stream.GROUPS:
            if group not in finished and stream.caught_up(states.get(group), last_id):
                finished[group] = time.perf_counter() - started
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    outcome: dict[str, tuple[int, float]] = {}
    for group in stream.GROUPS:
        if group in finished:
            outcome[group] = (EVENTS, finished[group])
        else:
            state = states.get(group)
            behind = (state.lag or 0) + state.pending if state else EVENTS
            outcome[group] = (max(0, EVENTS - behind), elapsed)
    return outcome


async def events_per_second(
    system: System, session: aiohttp.ClientSession, redis: Redis, user: BenchUser
) -> dict[str, float]:
    """XADD `EVENTS` completion events at once and time how long each group takes to acknowledge them."""
    conversations = await create_conversations(session, system.gateway, user, CONVERSATIONS)
    entries: list[Any] = [
        e.to_stream_fields() for e in _events(user, conversations, model_id(system, "qwen-turbo"))
    ]
    if not await stream.wait_idle(redis, timeout=60):
        print("  (the consumers had a backlog before the run)")
    dead_before = await redis.xlen(DEAD_LETTER_STREAM)
    with ResourceSampler(system.pids()) as sampler:
        started = time.perf_counter()
        outcome = await _time_groups(redis, started, await _publish(redis, entries))
        _, usage = sampler.window()
    dead = await redis.xlen(DEAD_LETTER_STREAM) - dead_before
    rates = {group: done / seconds for group, (done, seconds) in outcome.items()}
    rows = [
        (
            group,
            done,
            f"{seconds:.2f}" if done == EVENTS else f"> {seconds:.0f} (cut)",
            f"{rates[group]:.0f}",
            f"{1000 * usage[GROUP_PROCESS[group]].cpu_seconds / max(done, 1):.1f}",
        )
        for group, (done, seconds) in outcome.items()
    ]
    print(
        table(
            f"Consumers, {EVENTS} events at once (dead-lettered: {dead})",
            ["group", "events handled", "seconds", "events/s", "service CPU ms/event"],
            rows,
        )
    )
    return rates


def _visibility_tables(
    runs: list[visibility.Visibility], elapsed: float, usage: dict[str, ProcessUsage]
) -> str:
    summary = table(
        "Reply end → messages and bill visible (ms; a sample of the replies is polled)",
        [
            "replies as",
            "asked/s",
            "replies",
            "errors",
            "achieved/s",
            "chat p50",
            "measured",
            "not in 10 s",
            "p50",
            "p99",
        ],
        [
            (
                "events" if run.kind == "events" else "chats",
                f"{run.asked_rate:.0f}",
                run.sent,
                run.errors,
                f"{run.rate:.1f}",
                "-" if run.reply_p50 is None else ms(run.reply_p50),
                len(run.latencies),
                run.timeouts,
                ms(run.latency(50)),
                ms(run.latency(99)),
            )
            for run in runs
        ],
    )
    processes = table(
        f"Processes during the {runs[0].asked_rate:.0f}/s {runs[0].kind} run",
        ["process", "peak RSS MiB", "CPU % of one core"],
        [(name, mib(u.peak_rss_mib), f"{100 * u.cpu_seconds / elapsed:.0f}") for name, u in usage.items()],
    )
    return f"{summary}\n{processes}"


async def run(system: System, scorecard: Scorecard) -> None:
    """Both measurements; add the visibility target."""
    async with new_session() as session, Redis.from_url(system.redis.url, decode_responses=True) as redis:
        user = await register(session, system.gateway)
        rates = await events_per_second(system, session, redis, user)
        for group, rate in rates.items():
            scorecard.add(f"{group} consumes events (events/s, no target)", f"{rate:.0f}", None)
        await stream.wait_idle(redis, timeout=60)
        with ResourceSampler({**system.pids(), "bench": os.getpid()}) as sampler:
            result = await visibility.published(
                system, session, redis, user, model_id=model_id(system, visibility.MODEL)
            )
            elapsed, usage = sampler.window()
        chats = []
        for rate in visibility.CHAT_RATES:
            await stream.wait_idle(redis, timeout=60)
            chats.append(
                await visibility.sustained(
                    system,
                    session,
                    user,
                    rate=rate,
                    duration=visibility.CHAT_DURATION_S,
                    measure_every=visibility.CHAT_MEASURE_EVERY,
                )
            )
    print(_visibility_tables([result, *chats], elapsed, usage))
    p99 = result.latency(99)
    scorecard.add(
        f"reply → visible p99 < 1 s at {visibility.RATE:.0f} replies/s (events published)",
        f"p50 {ms(result.latency(50))} / p99 {ms(p99)} ms at {result.rate:.0f}/s",
        bool(result.latencies)
        and p99 < VISIBILITY_TARGET_S
        and result.errors == 0
        and result.timeouts == 0
        and result.rate >= 0.9 * visibility.RATE,
    )
    for chat in chats:
        scorecard.add(
            f"reply → visible at {chat.asked_rate:.0f} real chats/s (no target)",
            f"p50 {ms(chat.latency(50))} / p99 {ms(chat.latency(99))} ms at {chat.rate:.0f}/s",
            None,
        )
