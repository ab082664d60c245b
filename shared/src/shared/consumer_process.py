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

from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.app import Hook
from shared.db import SessionFactory, create_engine, create_session_factory
from shared.logging import configure_logging
from shared.messaging import EventHandler, Housekeeping, StreamConsumer, connect_redis
from shared.settings import SETTINGS_ERRORS, ConsumerSettings, settings_error_line

logger = logging.getLogger("shared.consumer_process")

CONSUMER_POOL_SIZE = 3  # one transaction at a time, a spare for the per-event fallback, housekeeping
HandlerFactory = Callable[[SessionFactory], EventHandler]
HousekeepingFactory = Callable[[SessionFactory], Housekeeping]


def _consumer(
    redis: Redis,
    engine: AsyncEngine,
    settings: ConsumerSettings,
    group: str,
    build_handler: HandlerFactory,
    build_housekeeping: HousekeepingFactory | None,
) -> StreamConsumer:
    """The group's consumer, the same inside a service and in a process of its own."""
    session_factory = create_session_factory(engine)
    return StreamConsumer(
        redis,
        group=group,
        handler=build_handler(session_factory),
        options=settings.consumer_options(),
        housekeeping=build_housekeeping(session_factory) if build_housekeeping else None,
    )


def consumer_hooks(
    *, group: str, build_handler: HandlerFactory, build_housekeeping: HousekeepingFactory | None = None
) -> tuple[Hook, Hook]:
    """`on_startup`/`on_shutdown` for `create_service_app`: the group's consumer as a background task,
    started only when `CONSUMER_ENABLED` (the default) and cancelled on shutdown."""

    async def on_startup(app: FastAPI) -> None:
        settings: ConsumerSettings = app.state.settings
        app.state.consumer_task = None
        if not settings.consumer_enabled:
            logger.info("consumer disabled", extra={"group": group})
            return
        # A small pool of the consumer's own: requests holding every connection of the app's pool
        # must not make replies wait to be recorded.
        engine = create_engine(settings.database_url, pool_size=CONSUMER_POOL_SIZE)
        consumer = _consumer(app.state.redis, engine, settings, group, build_handler, build_housekeeping)
        app.state.consumer_engine = engine
        app.state.consumer_task = asyncio.create_task(consumer.run(), name=f"consumer:{group}")
        logger.info("consumer started", extra={"group": group, "consumer": consumer.name})

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


async def run_consumer(
    *,
    settings: ConsumerSettings,
    group: str,
    build_handler: HandlerFactory,
    build_housekeeping: HousekeepingFactory | None = None,
) -> None:
    """Consume until SIGTERM/SIGINT, with an engine and a Redis client of this process's own."""
    engine = create_engine(settings.database_url, pool_size=CONSUMER_POOL_SIZE)
    redis = connect_redis(settings.redis_url)
    consumer = _consumer(redis, engine, settings, group, build_handler, build_housekeeping)
    task = asyncio.create_task(consumer.run(), name=f"consumer:{group}")
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    logger.info("consumer process started", extra={"group": group, "consumer": consumer.name})
    try:
        with suppress(asyncio.CancelledError):
            await task
    finally:
        logger.info("consumer process stopped", extra={"group": group, "applied": consumer.applied})
        await redis.aclose()
        await engine.dispose()


def consumer_main(
    *,
    name: str,
    group: str,
    load_settings: Callable[[], ConsumerSettings],
    build_handler: HandlerFactory,
    build_housekeeping: HousekeepingFactory | None = None,
) -> None:
    """The body of `python -m <service>.consumer`: one extra consumer of the group, no HTTP."""
    try:
        settings = load_settings()
    except SETTINGS_ERRORS as exc:
        print(f"{name}: refusing to start: {settings_error_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(name, settings.log_level)
    asyncio.run(
        run_consumer(
            settings=settings,
            group=group,
            build_handler=build_handler,
            build_housekeeping=build_housekeeping,
        )
    )
