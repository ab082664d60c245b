"""Pricing one call (seed §6, CONTRACT §3), exactly, in Decimal. Pure: no database, no I/O.

- `simple`: cost = (input_tokens × input_price + output_tokens × output_price) / 1000.
- `tier`: the one tier holding the call's input tokens (min_tokens < input ≤ max_tokens, max null =
  unbounded, the first tier also holds 0) prices the input *and* the output of the whole call; tiers
  are not sliced. Input beyond the last tier's bound is priced by the last tier, input in a gap
  between two tiers by the tier above it (each logged as a warning: the tier table needs fixing).
- No usable price: cost 0, logged as an error; the chat is never blocked by billing. A price not in
  CNY is not usable (CONTRACT: prices are CNY; bills and usage add costs up without converting).

Costs are never rounded here; a bill is the exact sum of its costs rounded once, in the database
(`ledger_repository.set_bills_from_ledger`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.models import ModelPrice

logger = logging.getLogger(__name__)

PER_TOKENS = Decimal(1000)
ZERO = Decimal(0)
CURRENCY = "CNY"  # of every price, cost and bill (CONTRACT §3)
SIMPLE = "simple"
TIER = "tier"


@dataclass(frozen=True)
class PriceTier:
    """An input-token range and its prices, CNY per 1,000 tokens."""

    min_tokens: int
    max_tokens: int | None
    input_price: Decimal
    output_price: Decimal


@dataclass(frozen=True)
class PriceInfo:
    """A model's price as configured in model_price (and model_price_tier)."""

    billing_mode: str
    input_price: Decimal | None = None
    output_price: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()
    currency: str = CURRENCY

    @classmethod
    def from_model_price(cls, price: ModelPrice) -> PriceInfo:
        """From the ORM row; its `tiers` must have been loaded."""
        return cls(
            billing_mode=price.billing_mode,
            input_price=price.input_price,
            output_price=price.output_price,
            tiers=tuple(
                PriceTier(t.min_tokens, t.max_tokens, t.input_price, t.output_price) for t in price.tiers
            ),
            currency=(price.currency or CURRENCY).strip(),
        )


@dataclass(frozen=True)
class CallCost:
    """The exact cost of one call and the unit prices it was computed with."""

    cost: Decimal
    billing_mode: str | None
    input_price: Decimal | None
    output_price: Decimal | None
    currency: str = CURRENCY


BEYOND_LAST_TIER = "input tokens beyond the last price tier; priced by the last tier"
IN_A_GAP = "input tokens in a gap between price tiers; priced by the tier above"


def select_tier(tiers: Sequence[PriceTier], input_tokens: int) -> tuple[PriceTier, str | None]:
    """The tier whose range holds `input_tokens` (the first also holds 0); when none does, the tier
    used instead and why (to be logged)."""
    ordered = sorted(tiers, key=lambda tier: tier.min_tokens)
    for tier in ordered:
        if tier.max_tokens is None or input_tokens <= tier.max_tokens:
            holds = input_tokens > tier.min_tokens or (
                tier is ordered[0] and input_tokens == 0 == tier.min_tokens
            )
            return tier, None if holds else IN_A_GAP
    return ordered[-1], BEYOND_LAST_TIER


class BillingCalculator:
    """Computes the cost of a call from a model's price and the call's usage."""

    def calculate(
        self, price: PriceInfo | None, *, input_tokens: int, output_tokens: int, model: str = ""
    ) -> CallCost:
        """The exact cost; 0 (and an error in the log) when the model has no usable price."""
        if price is None:
            return self._unpriced(model, "the model has no price")
        if price.currency != CURRENCY:
            return self._unpriced(model, f"a price in {price.currency!r}, not {CURRENCY}")
        if price.billing_mode == SIMPLE:
            if price.input_price is None or price.output_price is None:
                return self._unpriced(model, "a simple price without input or output price")
            input_price, output_price = price.input_price, price.output_price
        elif price.billing_mode == TIER:
            if not price.tiers:
                return self._unpriced(model, "a tiered price without tiers")
            tier, mismatch = select_tier(price.tiers, input_tokens)
            if mismatch:
                logger.warning(
                    mismatch,
                    extra={
                        "model": model,
                        "input_tokens": input_tokens,
                        "tier_min_tokens": tier.min_tokens,
                        "tier_max_tokens": tier.max_tokens,
                    },
                )
            input_price, output_price = tier.input_price, tier.output_price
        else:
            return self._unpriced(model, f"unknown billing mode {price.billing_mode!r}")
        cost = (input_tokens * input_price + output_tokens * output_price) / PER_TOKENS
        return CallCost(cost, price.billing_mode, input_price, output_price, price.currency)

    @staticmethod
    def _unpriced(model: str, reason: str) -> CallCost:
        logger.error("call billed 0: no usable price", extra={"model": model, "reason": reason})
        return CallCost(ZERO, None, None, None)
