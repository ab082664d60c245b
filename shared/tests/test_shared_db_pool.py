"""A pooled connection the server closed is replaced at checkout, without an error reaching the caller;
an outage of the database is told apart from a bug (a 503 and a retry, not a 500 and a dead letter)."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from shared.db import (
    create_engine,
    create_session_factory,
    is_transient_error,
    sync_database_url,
    unit_of_work,
)
from sqlalchemy import text

from testkit import ScratchDatabase, free_port


def _terminate_backend(engine_url: str, pid: int) -> None:
    """End one server process from outside, as a restart or an administrator would."""
    dsn = sync_database_url(engine_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def _backend_pid(engine_url: str, terminate: bool) -> tuple[int, int]:
    engine = create_engine(engine_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            first = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        if terminate:
            _terminate_backend(engine_url, first)
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


async def _error_of(engine_url: str, statement: str, *, terminate_first: bool = False) -> BaseException:
    engine = create_engine(engine_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            if terminate_first:
                pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                _terminate_backend(engine_url, pid)
            await connection.execute(text(statement))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError(f"{statement!r} did not fail")


def test_an_unreachable_database_is_transient() -> None:
    error = asyncio.run(_error_of(f"postgresql://postgres@127.0.0.1:{free_port()}/x", "SELECT 1"))
    assert is_transient_error(error), repr(error)


def test_a_database_that_refuses_connections_is_transient(database: ScratchDatabase) -> None:
    """Refused by the server rather than unreachable: connections not allowed (SQLSTATE 55000, as while
    an operator works on the database) and a database that does not exist (3D000)."""
    name = f"aigcspace_test_closed_{uuid.uuid4().hex[:8]}"
    server = database.url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            closed = asyncio.run(_error_of(f"{server}/{name}", "SELECT 1"))
        finally:
            admin.execute(f'DROP DATABASE "{name}"')
    missing = asyncio.run(_error_of(f"{server}/{name}", "SELECT 1"))
    assert "not currently accepting connections" in str(closed)
    assert "does not exist" in str(missing)
    assert is_transient_error(closed), repr(closed)
    assert is_transient_error(missing), repr(missing)


def test_a_connection_lost_mid_transaction_is_transient(database: ScratchDatabase) -> None:
    error = asyncio.run(_error_of(database.url, "SELECT 1", terminate_first=True))
    assert is_transient_error(error), repr(error)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (OSError("Multiple exceptions: connect to 10.0.0.1 failed"), True),
        (TimeoutError(), True),
        (FileNotFoundError(2, "no such file"), False),
        (PermissionError(13, "denied"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_network_kinds_of_os_error_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient_error(error) is transient


@pytest.mark.parametrize("statement", ["SELECT * FROM no_such_table", "SELECT 1 / 0"])
def test_a_failing_statement_is_not_transient(database: ScratchDatabase, statement: str) -> None:
    error = asyncio.run(_error_of(database.url, statement))
    assert not is_transient_error(error), repr(error)


async def _burst_then_one_more(engine_url: str) -> list[int]:
    """200 transactions at once on a pool of 2, some failing and some cancelled while they wait; then
    one more, which must find a slot (a leaked slot would make it wait forever)."""
    engine = create_engine(engine_url, pool_size=2)
    sessions = create_session_factory(engine)

    async def transaction(index: int) -> int:
        async with unit_of_work(sessions) as session:
            value = (await session.execute(text("SELECT CAST(:i AS integer)"), {"i": index})).scalar_one()
            if index % 10 == 0:
                raise ValueError("a failing transaction gives its slot back too")
            return int(value)

    try:
        waiting = [asyncio.create_task(transaction(1_000 + i)) for i in range(20)]
        outcomes = await asyncio.gather(*(transaction(i) for i in range(200)), return_exceptions=True)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        async with asyncio.timeout(5):
            assert await transaction(7) == 7
        return [outcome for outcome in outcomes if isinstance(outcome, int)]
    finally:
        await engine.dispose()


def test_a_burst_larger_than_the_pool_completes_and_gives_every_slot_back(database: ScratchDatabase) -> None:
    results = asyncio.run(_burst_then_one_more(database.url))
    assert results == [i for i in range(200) if i % 10]


async def _failed_statement(engine_url: str, secret: str) -> BaseException:
    engine = create_engine(engine_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT CAST(:value AS text), 1 / 0"), {"value": secret})
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("the statement should have failed")


def test_a_failed_statement_does_not_carry_its_parameters(database: ScratchDatabase) -> None:
    """Errors are logged and dead-lettered; a parameter may be a password hash, a key or a message."""
    secret = "sk-secret-parameter-value"
    error = asyncio.run(_failed_statement(database.url, secret))
    assert "division by zero" in str(error)
    assert secret not in str(error) and secret not in repr(error)
