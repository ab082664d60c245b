"""Completion events onto the Redis stream, with a PostgreSQL outbox for when Redis cannot take them.

An event is published as soon as its reply ends. Should that XADD fail, the event is kept in the outbox
instead, and the relay publishes it once Redis answers again; so a reply that ends while Redis is down is
not lost. (Writing every event to the outbox first would guarantee no more: llm-service changes nothing
else in the database that the event must be atomic with, and until the event is on the stream or in the
outbox it exists only in memory either way. It would cost two transactions per reply.) While the outbox
holds events of this process, its new ones queue behind them there, so the stream keeps the order in
which this process's replies ended.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several llm-service
instances relay side by side without publishing a row twice; the rows published are marked in the
transaction that claimed them (one UPDATE per pass), after their XADDs succeeded. (A crash between an
XADD and the commit can publish an event twice; consumers are idempotent by `event_id`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError
from shared.db import SessionFactory, unit_of_work
from shared.events import COMPLETION_STREAM, EVENT_FIELD, STREAM_MAX_LEN, CompletionEvent
from sqlalchemy.exc import SQLAlchemyError

from llm_service.repositories import outbox_repository

logger = logging.getLogger("llm_service.outbox")

PUBLISH_TIMEOUT_S = 5.0


async def publish(redis: Redis, fields: dict[str, str]) -> None:
    """XADD one event's stream entry (the stream keeps at least its newest 100,000 entries).

    Bounded in time: a Redis that hangs instead of refusing must not hold the relay (and its row locks)
    forever; the TimeoutError is an OSError like any other network failure.
    """
    async with asyncio.timeout(PUBLISH_TIMEOUT_S):
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

    @property
    def empty(self) -> bool:
        """Nothing of this process waits in the outbox: a new event may go straight to the stream."""
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
            for row in await outbox_repository.claim_unpublished(session, limit=self._batch_size):
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


class CompletionRecorder:
    """Puts each completion event on the stream, or in the outbox when Redis cannot take it (or the outbox
    still holds earlier events).

    It also knows which replies are still to be recorded (`reply_started` … `record`), so that a
    stopping process can wait for them (`drain`) before it closes Redis and the database: a stream cut
    by the shutdown is still recorded, and a recording in progress is never cut.
    """

    def __init__(self, *, session_factory: SessionFactory, redis: Redis, relay: OutboxRelay) -> None:
        self._sessions = session_factory
        self._redis = redis
        self._relay = relay
        self._unrecorded = 0  # replies started whose recording has not ended
        self._recordings: set[asyncio.Future[None]] = set()
        self._all_recorded = asyncio.Event()
        self._all_recorded.set()

    def reply_started(self) -> None:
        """A reply began whose event `record` will be given (exactly once) when it ends."""
        self._unrecorded += 1
        self._all_recorded.clear()

    @property
    def unrecorded(self) -> int:
        """Replies started whose recording has not ended yet."""
        return self._unrecorded

    async def drain(self) -> None:
        """Until every reply started so far is recorded."""
        await self._all_recorded.wait()

    async def record(self, event: CompletionEvent) -> None:
        """Record the event of a reply announced with `reply_started` (see `_record`), in a task of its
        own: a caller cancelled meanwhile (the client left, the process is stopping) does not cut the
        recording short. A failure is logged here, not raised: the reply itself was fine."""
        recording = asyncio.ensure_future(self._record(event))
        self._recordings.add(recording)  # a task nobody references may be collected
        recording.add_done_callback(self._recorded)
        with contextlib.suppress(Exception):
            await asyncio.shield(recording)

    def _recorded(self, recording: asyncio.Future[None]) -> None:
        self._recordings.discard(recording)
        if not recording.cancelled() and (error := recording.exception()) is not None:
            logger.error("recording a completion event failed", exc_info=error)
        self._unrecorded = max(self._unrecorded - 1, 0)
        if self._unrecorded == 0:
            self._all_recorded.set()

    async def _record(self, event: CompletionEvent) -> None:
        """Publish the event, or keep it for the relay; only both Redis and PostgreSQL failing loses it."""
        fields = event.to_stream_fields()
        if self._relay.empty:
            try:
                await publish(self._redis, fields)
                return
            except Exception as exc:  # whatever stopped the XADD, the outbox keeps the event
                logger.warning(
                    "cannot publish, keeping the event in the outbox",
                    extra={"event_id": str(event.event_id), "error": repr(exc)[:300]},
                )
        self._relay.writing()
        try:
            async with unit_of_work(self._sessions) as session:
                outbox_repository.add(session, event)
        except Exception as exc:
            logger.error(
                "outbox write failed, publishing directly",
                extra={"event_id": str(event.event_id), "error": repr(exc)[:300]},
            )
            try:  # out of order, perhaps, but not lost
                await publish(self._redis, fields)
            except Exception:
                logger.exception("completion event lost", extra={"event_id": str(event.event_id)})
            return
        finally:
            self._relay.written()
