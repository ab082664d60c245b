"""Pydantic field types every service's schemas share."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer

FOUR_PLACES = Decimal("0.0001")


def money_4(value: Decimal) -> Decimal:
    """Round half-up to the 4 places a bill is shown with."""
    return value.quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)


# A bill: a decimal string with exactly 4 places, e.g. "0.0123".
Money = Annotated[Decimal, PlainSerializer(lambda v: str(money_4(v)), return_type=str, when_used="json")]
# A price or exact cost: the decimal as stored, as a string (never a float).
DecimalStr = Annotated[Decimal, PlainSerializer(lambda v: str(v), return_type=str, when_used="json")]


def _iso_with_offset(value: datetime) -> str:
    """ISO 8601 with an explicit offset (`+00:00`), never a bare `Z` or a naive time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


# A point in time as ISO 8601 with its UTC offset, e.g. "2026-11-27T22:41:45.687284+00:00".
Timestamp = Annotated[datetime, PlainSerializer(_iso_with_offset, return_type=str, when_used="json")]


def _encodable(value: str) -> str:
    # JSON may spell a lone surrogate ("\\ud800"); such a string is not text: it can be neither sent on
    # as UTF-8 nor stored. Pydantic refuses it only in fields with a length or pattern constraint.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    return value


# Text that can be sent on: a string without lone surrogates (a NUL is kept: DashScope takes it).
UnicodeText = Annotated[str, AfterValidator(_encodable)]


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL, nor compare with it: refuse it here (422) rather than fail in
    # the database (500).
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def check_storable(value: str) -> str:
    """Validator of text stored or looked up as it is (a title): no lone surrogate, no NUL. Use it as
    `Annotated[str, Field(min_length=…, max_length=…), AfterValidator(check_storable)]`: a length given
    after the validator would be checked on its result and reported in "items", not characters."""
    return _no_nul(_encodable(value))
