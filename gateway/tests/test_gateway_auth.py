"""Registration and login through the real gateway (CONTRACT §2 "Auth and users")."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from testkit import System, make_user

PASSWORD = "correct-horse-battery"


def unique_name() -> str:
    return f"a_{uuid.uuid4().hex[:12]}"


async def test_register_returns_201_with_the_user(gateway: httpx.AsyncClient) -> None:
    name = unique_name()
    response = await gateway.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert body["code"] == 201 and body["message"] == "success"
    assert set(body["data"]) == {"id", "username", "has_apikey", "apikey_hint", "created_at"}
    assert body["data"]["username"] == name
    assert body["data"]["has_apikey"] is False and body["data"]["apikey_hint"] is None


async def test_register_stores_an_argon2_hash_not_the_password(
    gateway: httpx.AsyncClient, system: System
) -> None:
    name = unique_name()
    await gateway.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    with system.database.connect() as conn:
        row = conn.execute(
            "SELECT password_hash FROM aigcspace.users WHERE username = %s", (name,)
        ).fetchone()
    assert row is not None
    assert row[0].startswith("$argon2id$") and PASSWORD not in row[0]


async def test_register_duplicate_username_is_409(gateway: httpx.AsyncClient) -> None:
    name = unique_name()
    first = await gateway.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    assert first.status_code == 201
    second = await gateway.post("/api/auth/register", json={"username": name, "password": "another-password"})
    assert second.status_code == 409
    assert second.json() == {"code": 409, "message": "This username is already taken.", "data": None}


async def test_racing_registrations_of_one_name_give_one_201_and_409s(gateway: httpx.AsyncClient) -> None:
    name = unique_name()
    responses = await asyncio.gather(
        *(gateway.post("/api/auth/register", json={"username": name, "password": PASSWORD}) for _ in range(5))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409]


async def test_register_invalid_fields_are_422_with_field_errors_and_no_password_echo(
    gateway: httpx.AsyncClient,
) -> None:
    secret_password = "short7!"
    response = await gateway.post("/api/auth/register", json={"username": "a b", "password": secret_password})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 422
    assert isinstance(body["data"], list) and body["data"]
    assert all(set(item) == {"loc", "msg"} for item in body["data"])
    assert {tuple(item["loc"]) for item in body["data"]} == {("body", "username"), ("body", "password")}
    assert secret_password not in response.text


async def test_register_username_and_password_bounds(gateway: httpx.AsyncClient) -> None:
    cases = [
        ("ab", PASSWORD),  # too short
        ("x" * 65, PASSWORD),  # too long
        ("name/slash", PASSWORD),  # outside [A-Za-z0-9_.-]
        (unique_name(), "p" * 7),
        (unique_name(), "p" * 129),
    ]
    for username, password in cases:
        response = await gateway.post("/api/auth/register", json={"username": username, "password": password})
        assert response.status_code == 422, (username, password)
    edge = f"A.b-{uuid.uuid4().hex[:8]}_"
    response = await gateway.post("/api/auth/register", json={"username": edge, "password": "p" * 128})
    assert response.status_code == 201


async def test_login_returns_a_bearer_token(gateway: httpx.AsyncClient) -> None:
    name = unique_name()
    await gateway.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    response = await gateway.post("/api/auth/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"access_token", "token_type", "expires_in"}
    assert data["token_type"] == "bearer" and data["expires_in"] == 86400
    me = await gateway.get("/api/users/me", headers={"Authorization": f"Bearer {data['access_token']}"})
    assert me.status_code == 200 and me.json()["data"]["username"] == name


async def test_login_unknown_user_and_wrong_password_are_indistinguishable(
    gateway: httpx.AsyncClient,
) -> None:
    user = await make_user(gateway, apikey=None)
    wrong = await gateway.post(
        "/api/auth/login", json={"username": user.username, "password": "wrong-password"}
    )
    unknown = await gateway.post("/api/auth/login", json={"username": unique_name(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"code": 401, "message": "Invalid username or password.", "data": None}
    )


@pytest.mark.parametrize("username", ["ab\x00", "no such name", "é" * 5, "a", "", "a" * 65])
async def test_login_with_a_name_no_one_can_have_is_the_same_401(
    gateway: httpx.AsyncClient, username: str
) -> None:
    """A NUL in the name used to reach the database and fail there (500)."""
    response = await gateway.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.json() == {"code": 401, "message": "Invalid username or password.", "data": None}


@pytest.mark.parametrize("password", ["", "short", "p" * 129, "p" * 100_000])
async def test_a_wrong_password_registration_would_refuse_is_the_same_401(
    gateway: httpx.AsyncClient, password: str
) -> None:
    """Not a 422: a login says only that the credentials are wrong, whatever their length."""
    user = await make_user(gateway, apikey=None)
    response = await gateway.post("/api/auth/login", json={"username": user.username, "password": password})
    assert response.json() == {"code": 401, "message": "Invalid username or password.", "data": None}


async def test_login_without_a_password_is_422(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post("/api/auth/login", json={"username": "someone", "password": None})
    assert response.status_code == 422
    assert response.json()["data"][0]["loc"] == ["body", "password"]


async def test_login_of_an_inactive_user_is_401(gateway: httpx.AsyncClient, system: System) -> None:
    user = await make_user(gateway, apikey=None)
    with system.database.connect() as conn:
        conn.execute("UPDATE aigcspace.users SET is_active = false WHERE id = %s", (user.id,))
    response = await gateway.post(
        "/api/auth/login", json={"username": user.username, "password": user.password}
    )
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid username or password."


async def _login(gateway: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await gateway.post("/api/auth/login", json={"username": name, "password": password})


async def test_failed_logins_are_not_limited_by_default(gateway: httpx.AsyncClient) -> None:
    """CONTRACT §1: rate limits are settings, off in the dev run."""
    name = unique_name()
    await gateway.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    for _ in range(6):
        assert (await _login(gateway, name, "wrong-password-1")).status_code == 401
    assert (await _login(gateway, name, PASSWORD)).status_code == 200


async def test_a_name_with_too_many_failed_logins_waits_for_its_window(
    gateway: httpx.AsyncClient, system: System
) -> None:
    await asyncio.to_thread(system.stop, "gateway")
    try:
        limited = {"LOGIN_MAX_FAILURES": "3", "LOGIN_FAILURE_WINDOW_SECONDS": "120"}
        await asyncio.to_thread(system.start, "gateway", extra_env=limited)
        guessed, other, recovering = unique_name(), unique_name(), unique_name()
        for name in (guessed, other, recovering):
            await gateway.post("/api/auth/register", json={"username": name, "password": PASSWORD})

        for _ in range(3):
            assert (await _login(gateway, guessed, "wrong-password-1")).status_code == 401
        refused = await _login(gateway, guessed, PASSWORD)  # the right password is refused too
        assert refused.status_code == 429
        assert refused.json() == {
            "code": 429,
            "message": "Too many failed logins for this username: try again in 2 minutes.",
            "data": None,
        }
        assert 0 < int(refused.headers["retry-after"]) <= 120
        assert (await _login(gateway, other, PASSWORD)).status_code == 200  # per name

        # a name no one has is counted alike: the answer does not tell which names exist
        nobody = unique_name()
        statuses = [(await _login(gateway, nobody, "wrong-password-1")).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]

        # guesses sent at once are each counted before their password is checked
        parallel = unique_name()
        await gateway.post("/api/auth/register", json={"username": parallel, "password": PASSWORD})
        answers = await asyncio.gather(*(_login(gateway, parallel, "wrong-password-1") for _ in range(10)))
        assert sorted(a.status_code for a in answers) == [401] * 3 + [429] * 7

        # a right password starts the count afresh
        for attempt in (
            "wrong-password-1",
            "wrong-password-1",
            PASSWORD,
            "wrong-password-1",
            "wrong-password-1",
        ):
            response = await _login(gateway, recovering, attempt)
            assert response.status_code == (200 if attempt == PASSWORD else 401)

        # Redis down: the count cannot be read, and an outage must not lock everyone out
        await asyncio.to_thread(system.redis.stop)
        try:
            assert (await _login(gateway, guessed, PASSWORD)).status_code == 200
        finally:
            await asyncio.to_thread(system.redis.start)
    finally:
        await asyncio.to_thread(system.stop, "gateway")
        await asyncio.to_thread(system.start, "gateway")
