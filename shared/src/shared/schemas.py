"""Pydantic field types every service's schemas share."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import PlainSerializer

FOUR_PLACES = Decimal("0.0001")


def money_4(value: Decimal) -> Decimal:
    """Round half-up to the 4 places a bill is shown with."""
    return value.quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)


# A bill: a decimal string with exactly 4 places, e.g. "0.0123".
Money = Annotated[Decimal, PlainSerializer(lambda v: str(money_4(v)), return_type=str, when_used="json")]
# A price or exact cost: the decimal as stored, as a string (never a float).
DecimalStr = Annotated[Decimal, PlainSerializer(lambda v: str(v), return_type=str, when_used="json")]
