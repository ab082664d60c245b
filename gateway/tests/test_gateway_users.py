"""The caller's profile and DashScope key (CONTRACT §2): stored encrypted, shown only as a hint."""

from __future__ import annotations

import uuid

import httpx

from testkit import System, make_user


def fresh_key() -> str:
    return f"sk-{uuid.uuid4().hex}"


async def test_me_returns_the_caller(gateway: httpx.AsyncClient) -> None:
    user = await make_user(gateway, apikey=None)
    response = await gateway.get("/api/users/me", headers=user.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 200 and body["message"] == "success"
    data = body["data"]
    assert data["id"] == user.id and data["username"] == user.username
    assert data["has_apikey"] is False and data["apikey_hint"] is None
    assert data["created_at"].endswith("+00:00")  # ISO 8601 with its UTC offset


async def test_put_apikey_shows_only_a_hint_of_the_last_four(gateway: httpx.AsyncClient) -> None:
    user = await make_user(gateway, apikey=None)
    key = fresh_key()
    response = await gateway.put("/api/users/me/apikey", json={"apikey": key}, headers=user.headers)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["has_apikey"] is True
    hint = data["apikey_hint"]
    assert hint.endswith(key[-4:])
    assert hint == f"sk-…{key[-4:]}"
    assert key not in response.text and key[3:-4] not in response.text
    me = await gateway.get("/api/users/me", headers=user.headers)
    assert me.json()["data"]["apikey_hint"] == hint and key not in me.text


async def test_put_apikey_stores_it_encrypted(gateway: httpx.AsyncClient, system: System) -> None:
    user = await make_user(gateway, apikey=None)
    key = fresh_key()
    await gateway.put("/api/users/me/apikey", json={"apikey": key}, headers=user.headers)
    with system.database.connect() as conn:
        row = conn.execute("SELECT apikey FROM aigcspace.users WHERE id = %s", (user.id,)).fetchone()
    assert row is not None and row[0] and key not in row[0]


async def test_put_apikey_replaces_the_previous_key(gateway: httpx.AsyncClient) -> None:
    user = await make_user(gateway)
    key = "other-provider-key-ZZ91"
    response = await gateway.put("/api/users/me/apikey", json={"apikey": key}, headers=user.headers)
    assert response.json()["data"]["apikey_hint"] == "…ZZ91"


async def test_delete_apikey_removes_it(gateway: httpx.AsyncClient, system: System) -> None:
    user = await make_user(gateway)
    response = await gateway.delete("/api/users/me/apikey", headers=user.headers)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["has_apikey"] is False and data["apikey_hint"] is None
    with system.database.connect() as conn:
        row = conn.execute("SELECT apikey FROM aigcspace.users WHERE id = %s", (user.id,)).fetchone()
    assert row is not None and row[0] is None


async def test_apikey_must_be_1_to_256_characters(gateway: httpx.AsyncClient) -> None:
    user = await make_user(gateway, apikey=None)
    too_long = "sk-" + "k" * 254
    for value in ("", too_long):
        response = await gateway.put("/api/users/me/apikey", json={"apikey": value}, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["data"][0]["loc"] == ["body", "apikey"]
        assert too_long not in response.text
    response = await gateway.put("/api/users/me/apikey", json={"apikey": "k" * 256}, headers=user.headers)
    assert response.status_code == 200


async def test_apikey_routes_need_a_token(gateway: httpx.AsyncClient) -> None:
    for method in ("PUT", "DELETE"):
        response = await gateway.request(method, "/api/users/me/apikey", json={"apikey": "sk-abc"})
        assert response.status_code == 401


async def test_the_key_never_reaches_the_gateway_log(gateway: httpx.AsyncClient, system: System) -> None:
    key = fresh_key()
    user = await make_user(gateway, apikey=key)
    await gateway.get("/api/users/me", headers=user.headers)
    await gateway.put("/api/users/me/apikey", json={"apikey": ""}, headers=user.headers)  # a 422 as well
    await gateway.delete("/api/users/me/apikey", headers=user.headers)
    assert key not in system.log("gateway")
    assert user.password not in system.log("gateway")
