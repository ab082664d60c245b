"""`GET /api/billing/usage`: the caller's tokens and cost by model and by day over a date range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from testkit import ServiceChat, System, create_db_user, eventually, internal_headers, publish_events


def usage_headers(system: System, user_id: int) -> dict[str, str]:
    return internal_headers(system, user_id=user_id, audience="billing-service")


async def billed(system: System, *events: Any) -> None:
    def all_billed() -> bool:
        with system.database.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM aigcspace.billing_ledger WHERE event_id = ANY(%s)",
                ([e.event_id for e in events],),
            ).fetchone()
        return row == (len(events),)

    await eventually(all_billed)


def at(day: str, hour: int) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


async def test_usage_by_model_and_by_day(
    system: System, conversation_api: httpx.AsyncClient, billing_api: httpx.AsyncClient, stream_redis: Any
) -> None:
    chat = await ServiceChat(system, conversation_api).start()
    other = await ServiceChat(system, conversation_api).start()  # someone else's usage is not counted
    events = [
        # qwen-turbo: 1,000 in + 1,000 out = 0.0009 each
        chat.event("a", input_tokens=1_000, output_tokens=1_000, model="qwen-turbo").model_copy(
            update={"occurred_at": at("2024-03-01", 9)}
        ),
        chat.event("b", input_tokens=1_000, output_tokens=1_000, model="qwen-turbo").model_copy(
            update={"occurred_at": at("2024-03-02", 23)}
        ),
        # qwen-plus: 30 in + 10 out = 0.000044 each
        chat.event("c", input_tokens=30, output_tokens=10, model="qwen-plus").model_copy(
            update={"occurred_at": at("2024-03-02", 1)}
        ),
        chat.event("d", input_tokens=30, output_tokens=10, model="qwen-plus").model_copy(
            update={"occurred_at": at("2024-03-02", 2)}
        ),
        # outside the range
        chat.event("e", input_tokens=5, output_tokens=5, model="qwen-plus").model_copy(
            update={"occurred_at": at("2024-03-03", 0)}
        ),
        other.event("f", input_tokens=9_999, output_tokens=9_999).model_copy(
            update={"occurred_at": at("2024-03-01", 12)}
        ),
    ]
    await publish_events(stream_redis, *events)
    await billed(system, *events)

    response = await billing_api.get(
        "/api/billing/usage",
        params={"from": "2024-03-01", "to": "2024-03-02"},
        headers=usage_headers(system, chat.user_id),
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["from"], data["to"], data["currency"]) == ("2024-03-01", "2024-03-02", "CNY")
    assert data["total"] == {
        "input_tokens": 2_060,
        "output_tokens": 2_020,
        "total_tokens": 4_080,
        "cost": "0.0019",  # 0.0018 + 0.000088, rounded once
    }
    by_model = {m["model_name"]: m for m in data["by_model"]}
    assert set(by_model) == {"qwen-plus", "qwen-turbo"}
    assert by_model["qwen-turbo"]["cost"] == "0.0018"
    assert by_model["qwen-plus"] == {
        "model_id": events[2].model_id,
        "model_name": "qwen-plus",
        "input_tokens": 60,
        "output_tokens": 20,
        "total_tokens": 80,
        "cost": "0.0001",  # 0.000088
    }
    assert data["by_day"] == [
        {
            "date": "2024-03-01",
            "input_tokens": 1_000,
            "output_tokens": 1_000,
            "total_tokens": 2_000,
            "cost": "0.0009",
        },
        {
            "date": "2024-03-02",
            "input_tokens": 1_060,
            "output_tokens": 1_020,
            "total_tokens": 2_080,
            "cost": "0.0010",
        },
    ]


async def test_usage_defaults_to_the_last_30_days(
    system: System, conversation_api: httpx.AsyncClient, billing_api: httpx.AsyncClient, stream_redis: Any
) -> None:
    chat = await ServiceChat(system, conversation_api).start()
    event = chat.event("now", input_tokens=1_000, output_tokens=0, model="qwen-turbo")
    await publish_events(stream_redis, event)
    await billed(system, event)
    response = await billing_api.get("/api/billing/usage", headers=usage_headers(system, chat.user_id))
    assert response.status_code == 200
    data = response.json()["data"]
    today = datetime.now(UTC).date()
    assert date.fromisoformat(data["to"]) == today
    assert date.fromisoformat(data["from"]) == today - timedelta(days=29)
    assert data["total"]["cost"] == "0.0003"
    assert data["total"]["input_tokens"] == 1_000


async def test_usage_of_a_user_without_calls_is_zero(system: System, billing_api: httpx.AsyncClient) -> None:
    response = await billing_api.get(
        "/api/billing/usage", headers=usage_headers(system, create_db_user(system.database))
    )
    data = response.json()["data"]
    assert data["total"] == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "cost": "0.0000"}
    assert (data["by_model"], data["by_day"]) == ([], [])


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2024-03-05", "to": "2024-03-04"},
        {"from": "2023-01-01", "to": "2024-01-02"},  # 367 days
        {"from": "yesterday"},
        {"to": "2024-02-30"},
        {"from": "9999-12-30", "to": "9999-12-31"},
        {"from": "2024-03-01T00:00:00+08:00"},  # an instant of another UTC day, not a day
        {"to": "20240301"},
    ],
)
async def test_usage_rejects_a_bad_range(
    system: System, billing_api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await billing_api.get("/api/billing/usage", params=params, headers=usage_headers(system, 1))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 422
    assert body["data"][0]["loc"][0] == "query"


async def test_a_range_of_366_days_is_accepted(system: System, billing_api: httpx.AsyncClient) -> None:
    response = await billing_api.get(
        "/api/billing/usage",
        params={"from": "2024-01-01", "to": "2024-12-31"},  # leap year: 366 days
        headers=usage_headers(system, 1),
    )
    assert response.status_code == 200


@pytest.mark.parametrize(("to", "first"), [("0001-01-01", "0001-01-01"), ("0001-01-29", "0001-01-01")])
async def test_the_default_range_starts_no_earlier_than_the_first_day(
    system: System, billing_api: httpx.AsyncClient, to: str, first: str
) -> None:
    """30 days before `to` would be before year 1 (that was a 500)."""
    response = await billing_api.get(
        "/api/billing/usage", params={"to": to}, headers=usage_headers(system, 1)
    )
    assert response.status_code == 200, response.text
    assert (response.json()["data"]["from"], response.json()["data"]["to"]) == (first, to)


async def test_usage_needs_an_internal_credential(billing_api: httpx.AsyncClient) -> None:
    assert (await billing_api.get("/api/billing/usage")).status_code == 401
