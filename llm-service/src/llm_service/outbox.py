"""Completion events onto the Redis stream, with a PostgreSQL outbox for when Redis cannot take them.

An event is published as soon as its reply ends. Should that XADD fail, the event is kept in the outbox
instead, and the relay publishes it once Redis answers again; so a reply that ends while Redis is down is
not lost. While the outbox holds events of this process, its new ones queue behind them there, so the
stream keeps the order in which this process's replies ended. An event neither Redis nor the outbox takes
(both down at once) is held in memory and retried in the background by both routes, and later events
queue behind it there. It is lost only if the process ends first: a stopping one makes a last attempt and
logs the ids it loses.

Writing only the final event, when the reply ends, would leave a stream's reply in memory alone while it
runs: a process killed then (OOM, a crash, a lost node) would lose a reply DashScope has charged for.
So while a stream runs, its event as it stands (`interrupted`, the content and usage so far, the final
event's own `event_id`) is kept in the outbox too, under a lease (`InFlightEvent`): written once the
stream has run a second (`after_s`: a shorter reply costs no write, and a kill within it loses little),
in the background, and rewritten with a longer lease every `renew_s`. The relay
leaves the row alone while its lease runs; once the reply ends, the final event is recorded as above and
the row goes (or the final event takes its place, when it goes to the outbox). A row whose lease expired
belonged to a process that died: the relay publishes it, and the reply is recorded from its last
checkpoint. A process too slow to renew its lease (a database outage longer than the lease, a stalled
event loop) may so have its reply recorded from its last checkpoint as well, since consumers apply only
the first event of an id to arrive. (An earlier version argued that writing events to the outbox first
was pointless, since llm-service changes nothing else the event must be atomic with; that only weighed
failures at publish time, not the process dying while the reply is written, which is what this covers.)
Non-stream chats are not kept in flight: their conversation may not exist before the reply.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several llm-service
instances relay side by side without publishing a row twice; the rows published are marked in the
transaction that claimed them (one UPDATE per pass), after their XADDs succeeded. (A crash between an
XADD and the commit can publish an event twice; consumers are idempotent by `event_id`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Collection, Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from shared.db import SessionFactory, unit_of_work
from shared.events import COMPLETION_STREAM, EVENT_FIELD, STREAM_MAX_LEN, CompletionEvent
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from llm_service.repositories import outbox_repository

logger = logging.getLogger("llm_service.outbox")

PUBLISH_TIMEOUT_S = 5.0
# When a reply ends its client waits for the XADD (`[DONE]` comes after it): a Redis that hangs is given
# this long, then the outbox takes the event. An XADD takes well under a millisecond.
REPLY_PUBLISH_TIMEOUT_S = 2.0  # a loaded event loop alone may delay an answer by a second
# Writes of streams' rows in flight at once, at most (each takes one of the pool's connections).
JOURNAL_WRITERS = 2
# An event neither Redis nor the database would take is tried again after this long, doubling up to the cap.
RETRY_FIRST_DELAY_S = 0.5
RETRY_MAX_DELAY_S = 10.0


async def publish(redis: Redis, fields: dict[str, str], *, within_s: float = PUBLISH_TIMEOUT_S) -> None:
    """XADD one event's stream entry (the stream keeps at least its newest 100,000 entries).

    Bounded in time: a Redis that hangs instead of refusing must not hold the relay (and its row locks)
    forever; the TimeoutError is an OSError like any other network failure.
    """
    async with asyncio.timeout(within_s):
        await redis.xadd(
            COMPLETION_STREAM,
            fields,  # type: ignore[arg-type]
            maxlen=STREAM_MAX_LEN,
            approximate=True,
        )


class RedisUnavailable(Exception):
    """An XADD failed; the rows not published wait for the next attempt."""


class OutboxRelay:
    """Publishes unpublished outbox rows, oldest first; woken after each write, and polls anyway."""

    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        redis: Redis,
        poll_interval: float,
        batch_size: int = 100,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self._sessions = session_factory
        self._redis = redis
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._retention = retention
        self._wake = asyncio.Event()
        self._failing = False
        self._next_cleanup = 0.0
        self._writes = 0  # events this process began to put in the outbox
        self._writes_done = 0  # ... and of those, the writes that ended (committed or failed)
        # `_writes` when a pass last found the outbox empty; none has yet, and rows an earlier run of
        # this process left behind must be published before new events.
        self._writes_seen_empty = -1
        # The events of this process's streams still in flight (`CompletionRecorder` sets it).
        self.alive: Callable[[], Collection[uuid.UUID]] = tuple

    @property
    def empty(self) -> bool:
        """Nothing of this process waits in the outbox: a new event may go straight to the stream. (Rows in
        flight do not count: they are no event yet, and the relay skips them.)"""
        return self._writes == self._writes_seen_empty

    def writing(self) -> None:
        """An event is about to be put in the outbox: from now on later events queue behind it."""
        self._writes += 1

    def written(self) -> None:
        """That write ended; publish now rather than at the next poll."""
        self._writes_done += 1
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled; database and Redis outages are waited out."""
        loop = asyncio.get_running_loop()
        while True:
            more = False
            try:
                # Only writes that had ended before the SELECT are surely seen by it.
                writes_before, settled = self._writes, self._writes == self._writes_done
                published = await self.publish_pending()
                more = published > 0  # until a pass finds the outbox empty
                if published == 0 and settled:
                    self._writes_seen_empty = writes_before
                if self._failing:
                    logger.info("outbox relay publishing again")
                    self._failing = False
                if loop.time() >= self._next_cleanup:
                    await self.delete_published()
                    self._next_cleanup = loop.time() + 3600
            except asyncio.CancelledError:
                raise
            except (RedisUnavailable, RedisError, OSError, SQLAlchemyError) as exc:
                if not self._failing:
                    logger.warning(
                        "outbox relay cannot publish, will retry", extra={"error": repr(exc)[:300]}
                    )
                    self._failing = True
            except Exception:
                logger.exception("outbox relay failed")
                self._failing = True
            if not more:
                await self._wait()

    async def _wait(self) -> None:
        """Until woken or the poll interval passed; while failing, only the interval (no busy retry)."""
        if self._failing:
            await asyncio.sleep(self._poll_interval)
        else:
            try:
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
        self._wake.clear()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows; how many were published.

        Raises `RedisUnavailable` after committing what was published before Redis failed.
        """
        failure: Exception | None = None
        published: list[int] = []
        async with unit_of_work(self._sessions) as session:
            rows = await outbox_repository.claim_unpublished(
                session, limit=self._batch_size, alive=self.alive()
            )
            for row in rows:
                try:  # published as stored: a payload no consumer accepts goes to their dead letter
                    await publish(self._redis, {EVENT_FIELD: json.dumps(row.payload)})
                except (RedisError, OSError) as exc:
                    row.attempts += 1
                    row.last_error = repr(exc)[:1000]
                    failure = exc
                    break
                published.append(row.id)
            if published:
                await outbox_repository.mark_published(session, published)
        if failure is not None:
            raise RedisUnavailable(repr(failure)) from failure
        return len(published)

    async def delete_published(self) -> None:
        """Forget rows published longer ago than the retention (the stream and consumers have them)."""
        async with unit_of_work(self._sessions) as session:
            await outbox_repository.delete_published_before(session, datetime.now(UTC) - self._retention)


class InFlightEvent:
    """A running stream's event kept in the outbox under a lease (see the module's docstring), written in
    a task of its own so that the stream never waits for it: once the stream has run `after_s`, then
    about every `renew_s` (the event as `current` gives it then, a lease of `lease_s` from then). A stream
    that ends within `after_s` costs no write. A failed write is logged, never raised, and the next one
    writes the whole row again. Writes of all streams share `writers` (a few pooled connections), so a
    burst of streams does not keep requests from the pool."""

    def __init__(
        self,
        event_id: uuid.UUID,
        current: Callable[[], CompletionEvent],
        *,
        session_factory: SessionFactory,
        writers: asyncio.Semaphore,
        lease_s: float,
        renew_s: float,
        after_s: float,
    ) -> None:
        self._current = current
        self._sessions = session_factory
        self._writers = writers
        self._lease = timedelta(seconds=lease_s)
        self._renew_s = renew_s
        self._after_s = after_s
        self._ended = asyncio.Event()
        self.event_id = event_id  # of every event `current` gives
        self.written = False  # a row may exist: one write at least was made (or tried)
        self._keeping = asyncio.create_task(self._keep(), name="llm-in-flight")

    async def end(self, *, forget: bool) -> None:
        """Stop renewing and, when `forget` (its final event is on the stream or in the outbox), remove the
        row (a final event in its place stays). The write under way ends first, so that a late write
        cannot bring back a finished reply. A row not forgotten is published by the relay once its lease
        expired."""
        self._ended.set()
        await asyncio.gather(self._keeping, return_exceptions=True)
        if forget and self.written:
            await self._write(
                "forgetting", partial(outbox_repository.forget_in_flight, event_id=self.event_id)
            )

    def abandon(self) -> None:
        """Stop renewing at once (the process is stopping): a row written is published once its lease
        expired."""
        self._ended.set()
        self._keeping.cancel()

    async def _keep(self) -> None:
        wait = self._after_s
        while not await self._ends_within(wait):
            await self._write("keeping", self._checkpoint)
            wait = self._renew_s * random.uniform(0.8, 1.0)  # streams started together renew apart

    async def _checkpoint(self, session: AsyncSession) -> None:
        self.written = True
        await outbox_repository.keep_in_flight(session, self._current(), lease=self._lease)

    async def _ends_within(self, seconds: float) -> bool:
        """Whether the stream ended within `seconds` from now (0: whether it has ended)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._ended.wait()
        return self._ended.is_set()

    async def _write(self, what: str, write: Callable[[AsyncSession], Awaitable[None]]) -> None:
        try:
            async with self._writers, unit_of_work(self._sessions) as session:
                await write(session)
        except Exception as exc:  # the reply and its final event go on without it
            logger.warning(
                f"{what} a reply in flight failed",
                extra={"event_id": str(self.event_id), "error": repr(exc)[:300]},
            )


class CompletionRecorder:
    """Puts each completion event on the stream, or in the outbox when Redis cannot take it (or the outbox
    still holds earlier events); an event neither would take is held in memory and retried in the
    background until one does, and later events queue behind it.

    It also knows which replies are still to be recorded (`reply_started` … `record`), so that a
    stopping process can wait for them (`drain`) before it closes Redis and the database: a stream cut
    by the shutdown is still recorded, and a recording in progress is never cut. `close` then makes a
    last attempt at the held events and logs those it loses.
    """

    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        redis: Redis,
        relay: OutboxRelay,
        in_flight_lease_s: float,
        in_flight_renew_s: float,
        in_flight_after_s: float,
    ) -> None:
        self._sessions = session_factory
        self._in_flight_lease_s = in_flight_lease_s
        self._in_flight_renew_s = in_flight_renew_s
        self._in_flight_after_s = in_flight_after_s
        self._redis = redis
        self._relay = relay
        self._unrecorded = 0  # replies started whose recording has not ended
        self._recordings: set[asyncio.Future[None]] = set()
        self._all_recorded = asyncio.Event()
        self._all_recorded.set()
        self._held: list[CompletionEvent] = []  # taken by neither Redis nor the database yet, oldest first
        self._retrying: asyncio.Task[None] | None = None  # `_retry_held`, while events are held
        self._closing = asyncio.Event()
        self._in_flight: dict[uuid.UUID, InFlightEvent] = {}  # live streams' and held events', by event id
        self._journal_writers = asyncio.Semaphore(JOURNAL_WRITERS)
        relay.alive = self._alive_event_ids

    def _alive_event_ids(self) -> list[uuid.UUID]:
        """The events of this process's rows in flight, for the relay to leave alone."""
        return [event_id for event_id, in_flight in self._in_flight.items() if in_flight.written]

    def reply_started(self) -> None:
        """A reply began whose event `record` will be given (exactly once) when it ends."""
        self._unrecorded += 1
        self._all_recorded.clear()

    def keep_in_flight(self, event_id: uuid.UUID, current: Callable[[], CompletionEvent]) -> InFlightEvent:
        """Keep a started stream's event (`event_id`, as `current` gives it) in the outbox while it runs;
        give the final event to `record` at the end."""
        in_flight = InFlightEvent(
            event_id,
            current,
            session_factory=self._sessions,
            writers=self._journal_writers,
            lease_s=self._in_flight_lease_s,
            renew_s=self._in_flight_renew_s,
            after_s=self._in_flight_after_s,
        )
        self._in_flight[event_id] = in_flight
        return in_flight

    @property
    def unrecorded(self) -> int:
        """Replies started whose recording has not ended yet."""
        return self._unrecorded

    async def drain(self) -> None:
        """Until every reply started so far is recorded (or held)."""
        await self._all_recorded.wait()

    async def close(self) -> None:
        """After `drain`: one last attempt at the held events, at once; those still held when it fails (or
        is cut short) are logged as lost, by event id."""
        self._closing.set()
        try:
            if self._retrying is not None:
                await asyncio.gather(self._retrying, return_exceptions=True)
        finally:
            if self._held:
                _log_lost(self._held)
            for in_flight in self._in_flight.values():  # held events' and any never recorded
                in_flight.abandon()

    async def record(self, event: CompletionEvent) -> None:
        """Record the event of a reply announced with `reply_started` (see `_record`), in a task of its
        own: a caller cancelled meanwhile (the client left, the process is stopping) does not cut the
        recording short. A failure is logged here, not raised: the reply itself was fine. Its row in
        flight goes afterwards, in the background (`drain` waits for that too)."""
        recording = self._track(self._record(event))
        with contextlib.suppress(Exception):
            await asyncio.shield(recording)

    def _track(self, work: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        recording = asyncio.ensure_future(work)
        self._recordings.add(recording)  # a task nobody references may be collected
        recording.add_done_callback(self._recorded)
        return recording

    def _end_in_flight(self, event_id: uuid.UUID, *, forget: bool) -> None:
        """End the event's row in flight, if it has one (see `InFlightEvent.end`), in the background;
        `drain` waits for it."""
        in_flight = self._in_flight.pop(event_id, None)
        if in_flight is not None:
            self.reply_started()
            self._track(in_flight.end(forget=forget))

    def _recorded(self, recording: asyncio.Future[None]) -> None:
        self._recordings.discard(recording)
        if not recording.cancelled() and (error := recording.exception()) is not None:
            logger.error("recording a completion event failed", exc_info=error)
        self._unrecorded = max(self._unrecorded - 1, 0)
        if self._unrecorded == 0:
            self._all_recorded.set()

    async def _record(self, event: CompletionEvent) -> None:
        """Publish the event, or keep it for the relay; when neither Redis nor PostgreSQL takes it, hold it
        for `_retry_held` rather than make the reply wait. While events are held, a new one queues behind
        them (so it cannot overtake them).

        The stream's row in flight goes once its event is on the stream or in the outbox. While the event
        is held, the row is kept renewing (now with the final event), so that it survives the process; a
        failure here leaves it to its lease."""
        try:
            delivered = not self._held and await self._deliver([event])
        except BaseException:
            self._end_in_flight(event.event_id, forget=False)
            raise
        if delivered:
            self._end_in_flight(event.event_id, forget=True)
            return
        if self._closing.is_set():  # too late for another attempt: Redis and the database are closing
            _log_lost([event])
            self._end_in_flight(event.event_id, forget=False)
            return
        logger.warning("completion event held in memory, will retry", extra={"event_id": str(event.event_id)})
        self._held.append(event)
        if self._retrying is None:
            # A context of its own: its logs belong to no request, not to the one that happened to start it.
            self._retrying = asyncio.create_task(
                self._retry_held(), name="llm-completion-retry", context=contextvars.Context()
            )

    async def _retry_held(self) -> None:
        """Deliver the held events, oldest first, waiting longer after each attempt that leaves some (from
        RETRY_FIRST_DELAY_S, doubling up to RETRY_MAX_DELAY_S); on `close`, one last attempt at once."""
        delay = RETRY_FIRST_DELAY_S
        try:
            while self._held:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._closing.wait()
                attempted = list(self._held)  # events held meanwhile wait for the next attempt
                try:
                    delivered = await self._deliver(attempted)
                except Exception:  # a bug must not end the retries: the events would wait for the next one
                    logger.exception("retrying held completion events failed")
                    delivered = 0
                for recorded in self._held[:delivered]:
                    self._end_in_flight(recorded.event_id, forget=True)
                del self._held[:delivered]
                if delivered:
                    logger.info("held completion events recorded", extra={"events": delivered})
                if self._closing.is_set():
                    return
                delay = (
                    RETRY_FIRST_DELAY_S if delivered == len(attempted) else min(delay * 2, RETRY_MAX_DELAY_S)
                )
        finally:
            self._retrying = None

    async def _deliver(self, events: list[CompletionEvent]) -> int:
        """Put the events (oldest first) on the stream, or in the outbox once Redis fails (or while the
        outbox holds earlier events); should the outbox fail too, on the stream after all (out of order,
        perhaps, but not lost). How many of them, from the first, were delivered."""
        published = await self._publish_in_order(events) if self._relay.empty else 0
        rest = events[published:]
        if not rest:
            return published
        self._relay.writing()
        try:
            async with unit_of_work(self._sessions) as session:
                await outbox_repository.add(session, rest)
            return len(events)
        except Exception as exc:
            logger.warning(
                "outbox write failed, publishing directly",
                extra={"event_id": str(rest[0].event_id), "events": len(rest), "error": repr(exc)[:300]},
            )
        finally:
            self._relay.written()
        return published + await self._publish_in_order(rest)

    async def _publish_in_order(self, events: list[CompletionEvent]) -> int:
        """XADD the events one by one until one fails; how many were published."""
        for published, event in enumerate(events):
            try:
                await publish(self._redis, event.to_stream_fields(), within_s=REPLY_PUBLISH_TIMEOUT_S)
            except Exception as exc:  # whatever stopped the XADD, the outbox or a later attempt takes over
                logger.warning(
                    "cannot publish the completion events",
                    extra={
                        "event_id": str(event.event_id),
                        "events": len(events) - published,
                        "error": repr(exc)[:300],
                    },
                )
                return published
        return len(events)


def _log_lost(events: list[CompletionEvent]) -> None:
    """Each event by its id (never its content), so that it can be looked for: one cut off in its last
    attempt may have reached the stream or the outbox all the same."""
    logger.error(
        "completion events not recorded at shutdown, probably lost",
        extra={"events": len(events), "event_ids": [str(event.event_id) for event in events]},
    )
