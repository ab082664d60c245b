"""Billing routes, served at the public paths; the gateway forwards them for the caller."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator
from shared.dependencies import CurrentUserId, SessionDep
from shared.envelope import ApiResponse, envelope

from billing_service.schemas.billing_schema import UsageResponse
from billing_service.services import billing_service

router = APIRouter(prefix="/api/billing", tags=["billing"])

DEFAULT_DAYS = 30
MAX_DAYS = 366


_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _a_plain_date(value: object) -> object:
    # Pydantic would also take a date-time at midnight and drop its offset ("…T00:00:00+08:00" is a
    # different UTC day): only a calendar day is meant here.
    if isinstance(value, str) and not _PLAIN_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


UtcDay = Annotated[date, BeforeValidator(_a_plain_date)]


async def usage_period(
    date_from: Annotated[UtcDay | None, Query(alias="from", description="first UTC day (YYYY-MM-DD)")] = None,
    date_to: Annotated[UtcDay | None, Query(alias="to", description="last UTC day, included")] = None,
) -> tuple[date, date]:
    """The requested days; by default the last 30 (today included). At most 366 days, `from` ≤ `to`."""
    end = date_to or datetime.now(UTC).date()
    if end >= date.max:  # the range ends at the start of the next day, which must exist
        raise _invalid("to", "is out of range")
    start = date_from or _first_of_days_up_to(end, DEFAULT_DAYS)
    if start > end:
        raise _invalid("from", "must not be after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise _invalid("to", f"the range may span at most {MAX_DAYS} days")
    return start, end


def _first_of_days_up_to(end: date, days: int) -> date:
    """The first of the `days` days that end with `end`; never before the first day there is."""
    return end - timedelta(days=min(days - 1, (end - date.min).days))


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", field), "msg": message, "type": "value_error"}])


Period = Annotated[tuple[date, date], Depends(usage_period)]


@router.get("/usage", response_model=ApiResponse[UsageResponse])
async def get_usage(session: SessionDep, user_id: CurrentUserId, period: Period) -> JSONResponse:
    """The caller's tokens and cost by model and by day over a date range."""
    report = await billing_service.usage_report(
        session, user_id=user_id, date_from=period[0], date_to=period[1]
    )
    return envelope(report)
