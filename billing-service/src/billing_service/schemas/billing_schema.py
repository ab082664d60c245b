"""Response bodies of the billing routes."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field
from shared.schemas import Money


class UsageTotals(BaseModel):
    """Tokens and cost; `cost` is the exact sum of the calls' costs rounded half-up to 4 places once."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: Money


class ModelUsage(UsageTotals):
    model_id: int | None
    model_name: str


class DayUsage(UsageTotals):
    date: dt.date


class UsageResponse(BaseModel):
    """The caller's usage from `from` to `to` (UTC days, both included)."""

    model_config = ConfigDict(populate_by_name=True)

    date_from: dt.date = Field(alias="from")
    date_to: dt.date = Field(alias="to")
    currency: str
    total: UsageTotals
    by_model: list[ModelUsage]
    by_day: list[DayUsage]
