"""Finding a model's price through its id, with a short cache: an operator's change is seen within
`ttl_s` seconds (CONTRACT: within 60 s), and the hot path does not query prices for every call."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.repositories import price_repository
from billing_service.services.billing_calculator import PriceInfo


class PriceBook:
    """Prices by model id, each read from the database at most once per `ttl_s`."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[int, tuple[float, PriceInfo | None]] = {}

    async def price_for(self, session: AsyncSession, *, model_id: int) -> PriceInfo | None:
        """The model's price (None when it has none), fresh within `ttl_s`."""
        now = self._clock()
        cached = self._cache.get(model_id)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        row = await price_repository.get_price(session, model_id=model_id)
        price = PriceInfo.from_model_price(row) if row is not None else None
        self._cache[model_id] = (now, price)
        return price
