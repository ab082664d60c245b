"""The completion consumer of billing-service (group `billing-service`).

Runs inside the service when CONSUMER_ENABLED; `python -m billing_service.consumer` runs one more
consumer of the same group as a process of its own (scale-out).
"""

from __future__ import annotations

import logging

from shared.consumer_process import ConsumerSpec, consumer_main
from shared.db import SessionFactory, unit_of_work
from shared.events import BILLING_GROUP, CompletionEvent
from shared.messaging import EventHandler

from billing_service.config import BillingServiceSettings, get_settings
from billing_service.services.billing_calculator import BillingCalculator
from billing_service.services.billing_service import bill_completion_events
from billing_service.services.price_service import PriceBook

logger = logging.getLogger(__name__)


def build_handler(session_factory: SessionFactory, settings: BillingServiceSettings) -> EventHandler:
    """One transaction per batch of events; the consumer acknowledges them only after it committed."""
    prices = PriceBook(ttl_s=settings.price_cache_ttl_s)
    calculator = BillingCalculator()

    async def handle(events: list[CompletionEvent]) -> None:
        async with unit_of_work(session_factory) as session:
            outcomes = await bill_completion_events(session, events, prices=prices, calculator=calculator)
        logger.debug("completion events billed", extra={"events": len(events), "outcomes": len(outcomes)})

    return handle


CONSUMER = ConsumerSpec(group=BILLING_GROUP, build_handler=build_handler)


def main() -> None:
    consumer_main(name="billing-consumer", spec=CONSUMER, load_settings=get_settings)


if __name__ == "__main__":
    main()
