"""A pooled connection the server closed is replaced at checkout, without an error reaching the caller."""

from __future__ import annotations

import asyncio

import psycopg
from shared.db import create_engine, sync_database_url
from sqlalchemy import text

from testkit import ScratchDatabase


async def _backend_pid(engine_url: str, terminate: bool) -> tuple[int, int]:
    engine = create_engine(engine_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            first = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        if terminate:
            dsn = sync_database_url(engine_url).replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (first,))
            await asyncio.sleep(0.2)  # the close reaches the pooled connection
        async with engine.connect() as connection:
            second = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return first, second
    finally:
        await engine.dispose()


def test_pool_reuses_a_live_connection(database: ScratchDatabase) -> None:
    first, second = asyncio.run(_backend_pid(database.url, terminate=False))
    assert first == second


def test_pool_replaces_a_connection_the_server_closed(database: ScratchDatabase) -> None:
    first, second = asyncio.run(_backend_pid(database.url, terminate=True))
    assert first != second
