"""Chat benchmark: the same streaming chats through the gateway, straight to llm-service and straight to
the stand-in, at 1, 50, 200 and 1,000 concurrent streams, paced like a real model (20 pieces, 20 ms
apart) and unpaced; then non-stream requests per second.

The gateway row minus the llm-service row is what the gateway hop adds; the gateway row minus the
stand-in row is what the whole system adds (gateway, llm-service, its database work and the
conversation it creates).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import aiohttp
from redis.asyncio import Redis

from bench import stream
from bench.calls import PATHS, Endpoints, prompt
from bench.chat_report import ChatFigures, RunFigures, level_tables, non_stream_table, peak_table, score
from bench.load import Call, new_session, run_interleaved, run_level
from bench.report import Scorecard
from bench.users import register
from harness import ResourceSampler, System

LEVEL_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Level:
    """One concurrency: how many streams to send paced and unpaced (0: that run is skipped)."""

    concurrency: int
    paced: int
    unpaced: int
    warmup: int = 0  # short streams (at most this many at once) right before each run


# 1,000 runs paced only: unpaced, 1,000 streams of 20 pieces are a burst of a few ms each, which
# measures connection set-up, not streaming.
LEVELS = (
    Level(1, paced=10, unpaced=30),
    Level(50, paced=150, unpaced=150),
    Level(200, paced=400, unpaced=400),
    Level(1000, paced=1000, unpaced=0, warmup=200),
)
# No new stream is started after this many seconds of a run, so a slow path costs a bounded time (its
# streams per second are still right: streams finished over the run's wall time).
SEND_FOR_S = 5.0
SETTLE_S = 0.05  # at 1 concurrent, pause after each chat (see _Runner.settle)


async def _measure(
    session: aiohttp.ClientSession,
    sampler: ResourceSampler,
    call: Call,
    *,
    concurrency: int,
    count: int,
) -> RunFigures:
    sampler.reset()
    result = await run_level(
        session, call, concurrency=concurrency, count=count, timeout=LEVEL_TIMEOUT_S, send_for=SEND_FOR_S
    )
    window, usage = sampler.window()
    return RunFigures(result, usage, window)


async def _non_stream(endpoints: Endpoints, session: aiohttp.ClientSession, figures: ChatFigures) -> None:
    for path in PATHS:
        call = endpoints.call(path, prompt(tokens=80, paced=False), stream=False)
        figures.non_stream[path] = await run_level(
            session, call, concurrency=20, count=200, timeout=LEVEL_TIMEOUT_S, send_for=SEND_FOR_S
        )


@dataclass
class _Runner:
    """What every run of the chat benchmark shares."""

    system: System
    session: aiohttp.ClientSession
    redis: Redis
    endpoints: Endpoints
    sampler: ResourceSampler
    figures: ChatFigures

    async def consumers_idle(self) -> None:
        """Let the consumers catch up, so one run's backlog does not weigh on the next."""
        if not await stream.wait_idle(self.redis, timeout=60):
            print("  (the consumers did not catch up within 60 s)")

    async def settle(self) -> None:
        """After one chat: give the outbox relay a moment to publish its event, then let both consumers
        apply it, so the next chat does not share the machine with that work."""
        await asyncio.sleep(SETTLE_S)
        await stream.wait_idle(self.redis, timeout=5)

    async def interleaved(self, pacing: str, count: int) -> None:
        """One stream at a time, the paths in turn: at 1 concurrent the differences are a few ms, less
        than the machine's background load changes from one minute to the next."""
        content = prompt(tokens=80, paced=pacing == "paced")
        calls = {path: self.endpoints.call(path, content, stream=True) for path in PATHS}
        self.sampler.reset()
        results = await run_interleaved(
            self.session, calls, count=count, timeout=LEVEL_TIMEOUT_S, settle=self.settle
        )
        window, usage = self.sampler.window()
        for path, result in results.items():
            self.figures.runs[(1, pacing, path)] = RunFigures(result, usage, window, shared=True)
        self.figures.note_peaks(usage)

    async def level(self, level: Level) -> None:
        c = level.concurrency
        for pacing, count in (("paced", level.paced), ("unpaced", level.unpaced)):
            if c == 1 and count:
                await self.interleaved(pacing, count)
                await self.consumers_idle()
                continue
            for path in PATHS if count else ():
                if level.warmup:  # right before the run, while the new connections are kept alive
                    warm = self.endpoints.call(path, prompt(tokens=8, paced=True), stream=True)
                    await run_level(
                        self.session,
                        warm,
                        concurrency=level.warmup,
                        count=level.warmup,
                        timeout=LEVEL_TIMEOUT_S,
                    )
                call = self.endpoints.call(path, prompt(tokens=80, paced=pacing == "paced"), stream=True)
                figures = await _measure(self.session, self.sampler, call, concurrency=c, count=count)
                self.figures.runs[(c, pacing, path)] = figures
                self.figures.note_peaks(figures.usage)
                for error in figures.result.first_errors():
                    print(f"  {path} {pacing} x{c}: {error}")
                await self.consumers_idle()
                if self.system.exited():
                    raise RuntimeError(f"processes exited: {self.system.exited()}")
        pacings = [p for p, n in (("paced", level.paced), ("unpaced", level.unpaced)) if n]
        print(level_tables(self.figures, level.concurrency, pacings), flush=True)


async def run(system: System, scorecard: Scorecard) -> None:
    """Run every level and print its tables, then the non-stream figures; add the targets."""
    figures = ChatFigures()
    pids = {**system.pids(), "bench": os.getpid()}
    async with new_session() as session, Redis.from_url(system.redis.url, decode_responses=True) as redis:
        endpoints = Endpoints(system, await register(session, system.gateway))
        for path in PATHS:  # the first calls of each path pay for imports, caches and connections
            warm = endpoints.call(path, prompt(tokens=8, paced=False), stream=True)
            await run_level(session, warm, concurrency=1, count=5, timeout=LEVEL_TIMEOUT_S)
        with ResourceSampler(pids) as sampler:
            runner = _Runner(system, session, redis, endpoints, sampler, figures)
            for level in LEVELS:
                await runner.level(level)
            sampler.reset()
            await _non_stream(endpoints, session, figures)
            print(non_stream_table(figures), flush=True)
            figures.note_peaks(sampler.window()[1])
    print(peak_table(figures))
    score(figures, scorecard)
