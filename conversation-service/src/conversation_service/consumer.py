"""The completion consumer of conversation-service (group `conversation-service`).

Runs inside the service when CONSUMER_ENABLED; `python -m conversation_service.consumer` runs one more
consumer of the same group as a process of its own (scale-out).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from shared.consumer_process import ConsumerSpec, consumer_main
from shared.db import SessionFactory, unit_of_work
from shared.events import CONVERSATION_GROUP, CompletionEvent
from shared.messaging import EventHandler, Housekeeping

from conversation_service.config import ConversationServiceSettings, get_settings
from conversation_service.repositories import processed_event_repository
from conversation_service.services.completion_service import apply_completion_events

logger = logging.getLogger(__name__)


def build_handler(session_factory: SessionFactory, _settings: ConversationServiceSettings) -> EventHandler:
    """One transaction per batch of events; the consumer acknowledges them only after it committed."""

    async def handle(events: list[CompletionEvent]) -> None:
        async with unit_of_work(session_factory) as session:
            outcomes = await apply_completion_events(session, events)
        logger.debug("completion events handled", extra={"events": len(events), "outcomes": len(outcomes)})

    return handle


FORGET_BATCH = 5_000  # ids per transaction: short transactions, whatever the backlog


def build_housekeeping(
    session_factory: SessionFactory, settings: ConversationServiceSettings
) -> Housekeeping:
    """Forget the ids of events applied longer ago than the retention (the table would grow forever)."""
    retention = timedelta(days=settings.processed_event_retention_days)

    async def housekeep() -> None:
        cutoff = datetime.now(UTC) - retention
        forgotten = 0
        while True:
            async with unit_of_work(session_factory) as session:
                batch = await processed_event_repository.delete_processed_before(
                    session, cutoff=cutoff, limit=FORGET_BATCH
                )
            forgotten += batch
            if batch < FORGET_BATCH:
                break
        if forgotten:
            logger.info("forgot old processed events", extra={"events": forgotten})

    return housekeep


CONSUMER = ConsumerSpec(
    group=CONVERSATION_GROUP, build_handler=build_handler, build_housekeeping=build_housekeeping
)


def main() -> None:
    consumer_main(name="conversation-consumer", spec=CONSUMER, load_settings=get_settings)


if __name__ == "__main__":
    main()
