"""The completion consumer of conversation-service (group `conversation-service`).

Runs inside the service when CONSUMER_ENABLED; `python -m conversation_service.consumer` runs one more
consumer of the same group as a process of its own (scale-out).
"""

from __future__ import annotations

import logging

from shared.consumer_process import consumer_main
from shared.db import unit_of_work
from shared.events import CONVERSATION_GROUP, CompletionEvent
from shared.messaging import BatchEventHandler, EventHandler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversation_service.config import get_settings
from conversation_service.services.completion_service import apply_completion_event, apply_completion_events

logger = logging.getLogger(__name__)

GROUP = CONVERSATION_GROUP


def build_handler(session_factory: async_sessionmaker[AsyncSession]) -> EventHandler:
    """One transaction per event; the consumer acknowledges only after it committed."""

    async def handle(event: CompletionEvent) -> None:
        async with unit_of_work(session_factory) as session:
            outcome = await apply_completion_event(session, event)
        logger.debug("completion event handled", extra={"event_id": str(event.event_id), "outcome": outcome})

    return handle


def build_batch_handler(session_factory: async_sessionmaker[AsyncSession]) -> BatchEventHandler:
    """One transaction for a whole batch read (the per-event handler is the consumer's fallback when it
    fails, so a poison event cannot hold the others back)."""

    async def handle(events: list[CompletionEvent]) -> None:
        async with unit_of_work(session_factory) as session:
            outcomes = await apply_completion_events(session, events)
        logger.debug("completion events handled", extra={"events": len(events), "outcomes": len(outcomes)})

    return handle


def main() -> None:
    consumer_main(
        name="conversation-consumer",
        group=GROUP,
        load_settings=get_settings,
        build_handler=build_handler,
        build_batch_handler=build_batch_handler,
    )


if __name__ == "__main__":
    main()
