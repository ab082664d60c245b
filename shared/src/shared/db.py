"""Database plumbing: the async engine, the declarative base and the per-request session."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asyncpg import PostgresError
from sqlalchemy import MetaData, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

SCHEMA = "aigcspace"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every table in schema `aigcspace`."""

    metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)


def async_database_url(url: str) -> str:
    """Accept a plain `postgresql://` URL and pick the asyncpg driver for it."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` as PostgreSQL can store it: a NUL character (which `text` cannot hold) and a lone
    surrogate (which UTF-8 cannot encode) become U+FFFD, so one odd character never makes a whole
    message or title unstorable."""
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode()
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text)
    return text


def sync_database_url(url: str) -> str:
    """The same database for psycopg (migrations and set-up scripts)."""
    return "postgresql+psycopg://" + async_database_url(url).removeprefix("postgresql+asyncpg://")


# How long a request waits for a pooled connection before failing (the database is then overloaded).
POOL_TIMEOUT_SECONDS = 10.0


def create_engine(url: str, *, pool_size: int) -> AsyncEngine:
    """An asyncpg engine whose connections always search schema `aigcspace` first.

    A pooled connection the server has closed (a restart, an idle timeout) is replaced at checkout
    without a round trip: asyncpg notices the close as soon as it arrives, so `is_closed()` is enough.
    SQLAlchemy's `pool_pre_ping` would instead cost three round trips (BEGIN, a query, ROLLBACK) on every
    checkout, which was a tenth of a busy service's CPU.

    The pool has a fixed size (no overflow): an overflow connection is closed as soon as it is
    returned, so a busy service opened and closed a connection every few requests (a PostgreSQL
    backend started each time, and asyncpg's set-up round trips). Waiting a moment for a pooled
    connection is far cheaper; `pool_timeout` bounds the wait.

    A failed statement's error leaves out its parameters: errors are logged (and a consumer's are kept
    with the dead-lettered event), and parameters hold password hashes, encrypted keys and messages.

    Any failure to open a connection is an outage (`_failed_to_connect`).
    """
    engine = create_async_engine(
        async_database_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_recycle=3600,
        hide_parameters=True,
        connect_args={"server_settings": {"search_path": SCHEMA}},
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed_connection)
    event.listen(engine.sync_engine, "handle_error", _failed_to_connect)
    return engine


def _failed_to_connect(context: ExceptionContext) -> None:
    """Engine error hook: an error raised while opening a connection (there is none yet) marks the
    database as unavailable, whatever the server said. PostgreSQL refuses a connection with many
    codes besides those `is_transient_error` knows ("not currently accepting connections" is 55000, a
    database dropped or renamed 3D000): none is the request's or the event's fault, so each must be a
    503 and a retry, never a 500 or a dead-lettered event."""
    if context.connection is None and context.sqlalchemy_exception is not None:
        context.is_disconnect = True


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: a DisconnectionError makes the pool drop this connection and take another."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _is_transient_sqlstate(sqlstate: str) -> bool:
    """PostgreSQL's codes for "not now" rather than "never": a connection exception (class 08, but not
    a protocol violation), insufficient resources (53: too many connections, disk full), and the server
    shutting down, crashed or starting up (57P01–57P03)."""
    return (
        (sqlstate.startswith("08") and sqlstate != "08P01")
        or sqlstate.startswith("53")
        or sqlstate in ("57P01", "57P02", "57P03")
    )


# Every kind of exception `is_transient_error` may accept: handlers register for these.
TRANSIENT_ERROR_TYPES: tuple[type[Exception], ...] = (OSError, PoolTimeoutError, DBAPIError, PostgresError)


def is_transient_error(exc: BaseException) -> bool:
    """A failure of the infrastructure (the database or the network unreachable, the pool exhausted), not
    of the request or event itself: worth retrying, and a 503 rather than a 500 for a caller."""
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror | PoolTimeoutError):
        return True
    if type(exc) is OSError:  # what connecting raises for an unreachable host (not a missing file)
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig  # type: ignore[assignment]  # the driver's error, with PostgreSQL's SQLSTATE
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and _is_transient_sqlstate(sqlstate)


class SessionFactory(async_sessionmaker[AsyncSession]):
    """Sessions of one engine (loaded objects stay usable after commit), and as many slots for
    `unit_of_work` as the engine's pool has connections.

    A transaction waiting for a pooled connection inside SQLAlchemy waits in a greenlet whose slice of
    the C stack is copied to the heap (about 18 KiB each, measured): a burst of a thousand chats was
    18 MiB of waiting. Waiting for a slot first costs a plain asyncio waiter instead, and is faster.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, expire_on_commit=False)
        self.slots = asyncio.Semaphore(engine.pool.size())  # type: ignore[attr-defined]


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    """The sessions (and unit-of-work slots) of `engine`; one per engine."""
    return SessionFactory(engine)


@asynccontextmanager
async def unit_of_work(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends normally, rolled back otherwise.

    It holds one of the factory's slots while it runs, so it must not open another inside (with every
    slot held that way, each would wait for another forever).
    """
    try:
        async with asyncio.timeout(POOL_TIMEOUT_SECONDS):
            await factory.slots.acquire()
    except TimeoutError:
        raise PoolTimeoutError(f"no database connection was free within {POOL_TIMEOUT_SECONDS:g} s") from None
    try:
        async with factory() as session, session.begin():
            yield session
    finally:
        factory.slots.release()


async def read_from_one_snapshot(session: AsyncSession) -> None:
    """Make the rest of this transaction read from one snapshot (REPEATABLE READ), so what several
    statements read agrees (a conversation and its messages, a page and its total, a report's sums)
    while the consumers commit replies. Must come before the transaction's first statement."""
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
