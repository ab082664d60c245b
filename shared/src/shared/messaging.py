"""Consuming the completion stream: consumer groups, ack after commit, reclaim, dead letter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from shared.db import is_transient_error
from shared.events import COMPLETION_STREAM, DEAD_LETTER_STREAM, STREAM_MAX_LEN, CompletionEvent

logger = logging.getLogger("shared.messaging")

# Applies the events it is given in one transaction of its own (a single event is a batch of one).
EventHandler = Callable[[list[CompletionEvent]], Awaitable[None]]
# The service's own periodic clean-up (e.g. forgetting old idempotency records), run by each consumer.
Housekeeping = Callable[[], Awaitable[None]]
TransientCheck = Callable[[BaseException], bool]
# What XREADGROUP answers (with decode_responses=True): [(stream, [(entry id, fields), ...])]
StreamBatch = list[tuple[str, list[tuple[str, dict[str, str]]]]] | None


def connect_redis(url: str) -> Redis:
    """The client every process uses: text replies, a bounded connect, and a ping of a connection idle
    for 30 s before it is used again (so one a restarted Redis dropped is noticed, not written to).

    A command that fails on a connection Redis has dropped (a restart within those 30 s) is sent once
    more on a new connection, so the first command after Redis came back does not fail for nothing. Not
    after a timeout: a Redis that hangs would cost twice the wait. A command whose reply alone was lost
    may so run twice: a completion event or a dead letter is then added twice (every consumer applies
    an event once by its id), and a login attempt counted twice by the throttle.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2,
        health_check_interval=30,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
    )


def consumer_name(group: str) -> str:
    """Unique per process, so a restarted consumer never owns its predecessor's pending entries."""
    return f"{group}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class ConsumerOptions:
    """Tuning of one consumer; the defaults suit production, tests shorten the waits."""

    batch_size: int = 50
    block_ms: int = 1000
    claim_idle_ms: int = 15_000
    claim_interval_s: float = 5.0
    max_deliveries: int = 5
    retry_backoff_s: float = 1.0
    housekeeping_interval_s: float = 3600.0
    # A consumer name of the group with nothing pending and idle this long belongs to a process that is
    # gone (a live one reads at least every `block_ms`); it is deleted, so the group does not grow
    # with every restart.
    forget_consumer_idle_ms: int = 3_600_000


class StreamConsumer:
    """Applies the entries of the stream through `handler`, which commits its own transaction: each
    batch read in one go, and entry by entry where a batch fails (so a poison event is parked alone).

    An entry is acknowledged only after the handler returned, so a crash leaves it pending; pending
    entries idle longer than `claim_idle_ms` are reclaimed by any consumer of the group (XAUTOCLAIM);
    an entry delivered `max_deliveries` times, or one that is not a valid event, goes to the dead-letter
    stream with the reason, and the group moves on. Handlers must be idempotent (by `event_id`).
    A transient failure (`is_transient`: the database unreachable, say) does not count towards the dead
    letter: an outage longer than a few retries must not park every event that arrived during it.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        group: str,
        handler: EventHandler,
        stream: str = COMPLETION_STREAM,
        dead_letter_stream: str = DEAD_LETTER_STREAM,
        name: str | None = None,
        options: ConsumerOptions | None = None,
        is_transient: TransientCheck = is_transient_error,
        housekeeping: Housekeeping | None = None,
    ) -> None:
        self.redis = redis
        self.group = group
        self.handler = handler
        self.stream = stream
        self.dead_letter_stream = dead_letter_stream
        self.name = name or consumer_name(group)
        self.options = options or ConsumerOptions()
        self.is_transient = is_transient
        self.housekeeping = housekeeping
        self.applied = 0

    async def ensure_group(self) -> None:
        """Create the group reading from the stream's beginning, so no event published before is missed."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        """Consume until cancelled; Redis outages are waited out."""
        housekeeping = asyncio.create_task(self._housekeep_periodically(), name=f"housekeeping:{self.name}")
        try:
            await self._consume()
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        next_claim = 0.0
        group_ready = False
        while True:
            try:
                if not group_ready:
                    await self.ensure_group()
                    group_ready = True
                if loop.time() >= next_claim:
                    await self.reclaim()
                    next_claim = loop.time() + self.options.claim_interval_s
                await self.read_new()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("redis unavailable for consumer %s: %s", self.name, exc)
                group_ready = False
                await asyncio.sleep(self.options.retry_backoff_s)
            except Exception:
                logger.exception("consumer %s loop failed", self.name)
                await asyncio.sleep(self.options.retry_backoff_s)

    async def _housekeep_periodically(self) -> None:
        """`housekeep` now and every `housekeeping_interval_s`, beside the consuming (never delaying it)."""
        while True:
            await self.housekeep()
            await asyncio.sleep(self.options.housekeeping_interval_s)

    async def housekeep(self) -> None:
        """Forget the group's dead consumers and run the service's own clean-up; a step that fails is
        logged and tried again next round."""
        steps: list[tuple[str, Housekeeping]] = [("forget dead consumers", self.forget_dead_consumers)]
        if self.housekeeping is not None:
            steps.append(("service clean-up", self.housekeeping))
        for step, run in steps:
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("consumer housekeeping failed", extra={"group": self.group, "step": step})

    async def forget_dead_consumers(self) -> None:
        """Delete the group's consumer names with nothing pending and idle past `forget_consumer_idle_ms`
        (never this one)."""
        try:
            consumers: list[dict[str, Any]] = await self.redis.xinfo_consumers(self.stream, self.group)
        except ResponseError as exc:
            if "NOGROUP" in str(exc) or "no such key" in str(exc):  # no group yet: nobody to forget
                return
            raise
        forgotten = []
        for consumer in consumers:
            name = str(consumer["name"])
            if (
                name != self.name
                and int(consumer["pending"]) == 0
                and int(consumer["idle"]) >= self.options.forget_consumer_idle_ms
            ):
                await self.redis.xgroup_delconsumer(self.stream, self.group, name)
                forgotten.append(name)
        if forgotten:
            logger.info("forgot consumers that are gone", extra={"group": self.group, "consumers": forgotten})

    async def read_new(self) -> int:
        """Read and apply one batch of never-delivered entries; returns how many were read."""
        response = cast(
            StreamBatch,
            await self.redis.xreadgroup(
                self.group,
                self.name,
                {self.stream: ">"},
                count=self.options.batch_size,
                block=self.options.block_ms,
            ),
        )
        entries = [entry for _stream, stream_entries in response or [] for entry in stream_entries]
        if len(entries) > 1:
            await self.process_batch(entries)
        else:
            for entry_id, fields in entries:
                await self.process(entry_id, fields)
        return len(entries)

    async def process_batch(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Apply the batch's valid events in one transaction and ack them with one XACK after its
        commit. When the batch fails, each entry is applied on its own (`process`), so a poison event
        ends in the dead letter alone and the others still apply."""
        valid: list[tuple[str, dict[str, str], CompletionEvent]] = []
        for entry_id, fields in entries:
            try:
                valid.append((entry_id, fields, CompletionEvent.from_stream_fields(fields)))
            except (KeyError, ValueError, ValidationError) as exc:
                await self.dead_letter(entry_id, fields, f"not a valid completion event: {exc}")
        if not valid:
            return
        try:
            await self.handler([event for _, _, event in valid])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.is_transient(exc):
                # Left pending and reclaimed (one by one) once the outage is over.
                logger.warning(
                    "applying a batch failed transiently",
                    extra={"group": self.group, "events": len(valid), "error": repr(exc)},
                )
                await asyncio.sleep(self.options.retry_backoff_s)
                return
            logger.warning(
                "applying a batch failed; applying its events one by one",
                extra={"group": self.group, "events": len(valid), "error": repr(exc)},
            )
            for entry_id, fields, _ in valid:
                await self.process(entry_id, fields)
            return
        await self.redis.xack(self.stream, self.group, *[entry_id for entry_id, _, _ in valid])
        self.applied += len(valid)

    async def reclaim(self) -> int:
        """Take over entries left pending too long (a dead consumer's, or ones whose handler failed)."""
        cursor = "0-0"
        claimed_total = 0
        while True:
            result = await self.redis.xautoclaim(
                self.stream,
                self.group,
                self.name,
                min_idle_time=self.options.claim_idle_ms,
                start_id=cursor,
                count=self.options.batch_size,
            )
            cursor = str(result[0])
            entries: list[tuple[str, dict[str, str] | None]] = list(result[1])
            for entry_id, fields in entries:
                if entry_id is None:  # Redis < 7 answers a nil for an entry deleted while pending
                    continue
                if fields is None:  # deleted from the stream while pending: nothing left to apply
                    await self.redis.xack(self.stream, self.group, entry_id)
                    continue
                claimed_total += 1
                await self.process(entry_id, fields)
            if cursor in ("0-0", b"0-0"):
                return claimed_total

    async def process(self, entry_id: str, fields: dict[str, str]) -> None:
        """Apply one entry; ack after the handler's commit, park it when it cannot succeed."""
        try:
            event = CompletionEvent.from_stream_fields(fields)
        except (KeyError, ValueError, ValidationError) as exc:
            await self.dead_letter(entry_id, fields, f"not a valid completion event: {exc}")
            return
        try:
            await self.handler([event])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.is_transient(exc):
                # Left pending and retried (reclaimed) once the outage is over; back off meanwhile
                # instead of failing the rest of the batch at full speed.
                logger.warning(
                    "applying event failed transiently",
                    extra={"event_id": str(event.event_id), "group": self.group, "error": repr(exc)},
                )
                await asyncio.sleep(self.options.retry_backoff_s)
                return
            deliveries = await self.delivery_count(entry_id)
            logger.warning(
                "applying event failed",
                extra={
                    "event_id": str(event.event_id),
                    "group": self.group,
                    "deliveries": deliveries,
                    "error": repr(exc),
                },
            )
            if deliveries >= self.options.max_deliveries:
                await self.dead_letter(entry_id, fields, f"failed {deliveries} times: {exc!r}")
            return
        await self.redis.xack(self.stream, self.group, entry_id)
        self.applied += 1

    async def delivery_count(self, entry_id: str) -> int:
        pending = await self.redis.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
        return int(pending[0]["times_delivered"]) if pending else 1

    async def dead_letter(self, entry_id: str, fields: dict[str, str], reason: str) -> None:
        """Park the entry with why it failed, then acknowledge it so the group moves on."""
        entry: dict[str, str] = {
            **fields,
            "group": self.group,
            "entry_id": str(entry_id),
            "reason": reason[:2000],
            "failed_at": datetime.now(UTC).isoformat(),
        }
        await self.redis.xadd(
            self.dead_letter_stream,
            cast(Any, entry),
            maxlen=STREAM_MAX_LEN,
            approximate=True,
        )
        await self.redis.xack(self.stream, self.group, entry_id)
        logger.error(
            "event parked in dead letter",
            extra={"group": self.group, "entry_id": str(entry_id), "reason": reason[:500]},
        )
