"""Shapes every service shares: times carry their UTC offset, and an API path is exact."""

from __future__ import annotations

from datetime import datetime

import httpx

from testkit import UserSession


async def test_times_are_iso_8601_with_an_offset(gateway: httpx.AsyncClient, user: UserSession) -> None:
    created = await gateway.post("/api/conversations", json={"title": "times"}, headers=user.headers)
    assert created.status_code == 201
    data = created.json()["data"]
    for field in ("created_at", "updated_at"):
        assert data[field].endswith("+00:00"), data[field]
        assert datetime.fromisoformat(data[field]).utcoffset() is not None


async def test_a_trailing_slash_is_a_404_in_the_envelope(
    gateway: httpx.AsyncClient, user: UserSession
) -> None:
    response = await gateway.get("/api/conversations/", headers=user.headers)
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": "Not found.", "data": None}


async def test_a_body_that_is_not_json_says_so(gateway: httpx.AsyncClient, user: UserSession) -> None:
    headers = {**user.headers, "Content-Type": "application/json"}
    response = await gateway.post("/api/conversations", content=b'{"title": "a"', headers=headers)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 422
    assert body["message"].startswith("The request body is not valid JSON at character 13"), body


async def test_a_wrong_field_is_named(gateway: httpx.AsyncClient, user: UserSession) -> None:
    response = await gateway.post("/api/conversations", json={"title": ""}, headers=user.headers)
    assert response.status_code == 422
    assert response.json()["message"].startswith("Invalid field title: "), response.text


async def test_a_wrong_query_parameter_is_named_plainly(
    gateway: httpx.AsyncClient, user: UserSession
) -> None:
    response = await gateway.get(
        "/api/billing/usage", params={"from": "2026-01-01T00:00"}, headers=user.headers
    )
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "Invalid field from: must be a date as YYYY-MM-DD.", body
    assert body["data"] == [{"loc": ["query", "from"], "msg": "must be a date as YYYY-MM-DD"}]


async def test_head_answers_wherever_get_does(gateway: httpx.AsyncClient, user: UserSession) -> None:
    """HTTP: a server that answers GET answers HEAD, the same headers without the body."""
    for path in ("/api/llm/models", "/api/conversations", "/api/users/me", "/"):
        got = await gateway.get(path, headers=user.headers)
        head = await gateway.head(path, headers=user.headers)
        assert (head.status_code, got.status_code) == (200, 200), path
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
    listed = await gateway.head("/api/conversations", headers=user.headers)
    assert "x-total-count" in listed.headers
    assert (await gateway.head("/api/conversations/999999999", headers=user.headers)).status_code == 404
