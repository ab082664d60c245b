"""The completion consumer of conversation-service (group `conversation-service`).

Runs inside the service when CONSUMER_ENABLED; `python -m conversation_service.consumer` runs one more
consumer of the same group as a process of its own (scale-out).
"""

from __future__ import annotations

import logging

from shared.consumer_process import consumer_main
from shared.db import unit_of_work
from shared.events import CONVERSATION_GROUP, CompletionEvent
from shared.messaging import EventHandler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversation_service.config import get_settings
from conversation_service.services.completion_service import apply_completion_events

logger = logging.getLogger(__name__)

GROUP = CONVERSATION_GROUP


def build_handler(session_factory: async_sessionmaker[AsyncSession]) -> EventHandler:
    """One transaction per batch of events; the consumer acknowledges them only after it committed."""

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
    )


if __name__ == "__main__":
    main()
