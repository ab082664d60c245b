"""Running a completion-stream consumer: as a background task of a service, or as a process of its own.

The same handler runs both ways, so extra consumer processes (scale-out) behave exactly like the one
inside the service: same group, unique consumer name, ack after commit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.app import Hook
from shared.db import SessionFactory, create_engine, create_session_factory
from shared.logging import configure_logging
from shared.messaging import EventHandler, Housekeeping, StreamConsumer, connect_redis
from shared.run import spare_collector_from_startup_objects
from shared.settings import SETTINGS_ERRORS, ConsumerSettings, settings_error_line

logger = logging.getLogger("shared.consumer_process")

CONSUMER_POOL_SIZE = 3  # one transaction at a time, a spare for the per-event fallback, housekeeping
S = TypeVar("S", bound=ConsumerSettings)


@dataclass(frozen=True)
class ConsumerSpec(Generic[S]):
    """A service's consumer: its group, and how to build its handler (and housekeeping) from a session
    factory and the service's own settings."""

    group: str
    build_handler: Callable[[SessionFactory, S], EventHandler]
    build_housekeeping: Callable[[SessionFactory, S], Housekeeping] | None = None

    def build(self, redis: Redis, engine: AsyncEngine, settings: S) -> StreamConsumer:
        """The group's consumer, the same inside a service and in a process of its own."""
        session_factory = create_session_factory(engine)
        housekeeping = self.build_housekeeping(session_factory, settings) if self.build_housekeeping else None
        return StreamConsumer(
            redis,
            group=self.group,
            handler=self.build_handler(session_factory, settings),
            options=settings.consumer_options(),
            housekeeping=housekeeping,
        )


def consumer_hooks(spec: ConsumerSpec[S], settings: S) -> tuple[Hook, Hook]:
    """`on_startup`/`on_shutdown` for `create_service_app`: the group's consumer as a background task,
    started only when `CONSUMER_ENABLED` (the default) and cancelled on shutdown."""

    async def on_startup(app: FastAPI) -> None:
        app.state.consumer_task = None
        if not settings.consumer_enabled:
            logger.info("consumer disabled", extra={"group": spec.group})
            return
        # A small pool of the consumer's own: requests holding every connection of the app's pool
        # must not make replies wait to be recorded.
        engine = create_engine(settings.database_url, pool_size=CONSUMER_POOL_SIZE)
        consumer = spec.build(app.state.redis, engine, settings)
        app.state.consumer_engine = engine
        app.state.consumer_task = asyncio.create_task(consumer.run(), name=f"consumer:{spec.group}")
        logger.info("consumer started", extra={"group": spec.group, "consumer": consumer.name})

    async def on_shutdown(app: FastAPI) -> None:
        task: asyncio.Task[None] | None = getattr(app.state, "consumer_task", None)
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        engine: AsyncEngine | None = getattr(app.state, "consumer_engine", None)
        if engine is not None:
            await engine.dispose()

    return on_startup, on_shutdown


async def run_consumer(spec: ConsumerSpec[S], settings: S) -> None:
    """Consume until SIGTERM/SIGINT, with an engine and a Redis client of this process's own."""
    engine = create_engine(settings.database_url, pool_size=CONSUMER_POOL_SIZE)
    redis = connect_redis(settings.redis_url)
    consumer = spec.build(redis, engine, settings)
    task = asyncio.create_task(consumer.run(), name=f"consumer:{spec.group}")
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    logger.info("consumer process started", extra={"group": spec.group, "consumer": consumer.name})
    try:
        with suppress(asyncio.CancelledError):
            await task
    finally:
        logger.info("consumer process stopped", extra={"group": spec.group, "applied": consumer.applied})
        await redis.aclose()
        await engine.dispose()


def consumer_main(*, name: str, spec: ConsumerSpec[S], load_settings: Callable[[], S]) -> None:
    """The body of `python -m <service>.consumer`: one extra consumer of the group, no HTTP."""
    try:
        settings = load_settings()
    except SETTINGS_ERRORS as exc:
        print(f"{name}: refusing to start: {settings_error_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(name, settings.log_level)
    spare_collector_from_startup_objects()
    asyncio.run(run_consumer(spec, settings))
