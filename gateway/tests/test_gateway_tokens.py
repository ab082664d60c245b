"""Bearer tokens (CONTRACT §2): only valid HS256 tokens with exp, iat and sub, of an active user, get in."""

from __future__ import annotations

import base64
import json
import time
import warnings

import httpx
import jwt
import pytest

from testkit import System, UserSession, make_user


@pytest.fixture(scope="module")
async def user(system: System) -> UserSession:
    """One user for this module: each registration costs two argon2 runs."""
    async with httpx.AsyncClient(base_url=system.gateway, timeout=30) as client:
        return await make_user(client, apikey=None)


def claims(user_id: int, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {"sub": str(user_id), "iat": now, "exp": now + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def unsigned(payload: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def hs512(payload: dict[str, object], secret: str) -> str:
    with warnings.catch_warnings():  # the test secret is shorter than HS512 recommends; irrelevant here
        warnings.simplefilter("ignore")
        return jwt.encode(payload, secret, "HS512")


def bad_headers(name: str, secret: str, user_id: int) -> dict[str, str]:
    now = int(time.time())
    tokens = {
        "no header": None,
        "not bearer": f"Basic {base64.b64encode(b'u:p').decode()}",
        "bearer without token": "Bearer",
        "malformed": "Bearer not.a.jwt",
        "expired": "Bearer " + jwt.encode(claims(user_id, iat=now - 100, exp=now - 10), secret, "HS256"),
        "another secret": "Bearer " + jwt.encode(claims(user_id), "x" * 40, "HS256"),
        "alg none": "Bearer " + unsigned(claims(user_id)),
        "HS512": "Bearer " + hs512(claims(user_id), secret),
        "no exp": "Bearer " + jwt.encode(claims(user_id, exp=None), secret, "HS256"),
        "no sub": "Bearer " + jwt.encode(claims(user_id, sub=None), secret, "HS256"),
        "no iat": "Bearer " + jwt.encode(claims(user_id, iat=None), secret, "HS256"),
        "unknown user": "Bearer " + jwt.encode(claims(2_000_000_000), secret, "HS256"),
        "sub beyond bigint": "Bearer " + jwt.encode(claims(user_id, sub="9" * 23), secret, "HS256"),
        "sub with a leading zero": "Bearer "
        + jwt.encode(claims(user_id, sub=f"0{user_id}"), secret, "HS256"),
    }
    value = tokens[name]
    return {} if value is None else {"Authorization": value}


BAD = [
    "no header",
    "not bearer",
    "bearer without token",
    "malformed",
    "expired",
    "another secret",
    "alg none",
    "HS512",
    "no exp",
    "no sub",
    "no iat",
    "unknown user",
    "sub beyond bigint",
    "sub with a leading zero",
]


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers.get("www-authenticate") == "Bearer"
    body = response.json()
    assert body["code"] == 401 and body["data"] is None and body["message"]


@pytest.mark.parametrize("case", BAD)
async def test_bad_token_on_a_gateway_route_is_401(
    case: str, gateway: httpx.AsyncClient, system: System, user: UserSession
) -> None:
    headers = bad_headers(case, system.env["JWT_SECRET"], user.id)
    assert_401(await gateway.get("/api/users/me", headers=headers))


@pytest.mark.parametrize("case", BAD)
async def test_bad_token_on_a_proxied_route_is_401(
    case: str, gateway: httpx.AsyncClient, system: System, user: UserSession
) -> None:
    headers = bad_headers(case, system.env["JWT_SECRET"], user.id)
    assert_401(await gateway.get("/api/conversations", headers=headers))
    assert_401(await gateway.post("/api/llm/chat", headers=headers, json={}))


async def test_a_token_signed_with_the_internal_secret_is_refused(
    gateway: httpx.AsyncClient, system: System, user: UserSession
) -> None:
    token = jwt.encode(claims(user.id), system.env["INTERNAL_SECRET"], "HS256")
    assert_401(await gateway.get("/api/users/me", headers={"Authorization": f"Bearer {token}"}))


async def test_a_valid_handmade_token_is_accepted(
    gateway: httpx.AsyncClient, system: System, user: UserSession
) -> None:
    token = jwt.encode(claims(user.id), system.env["JWT_SECRET"], "HS256")
    response = await gateway.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["data"]["id"] == user.id


async def test_token_of_a_deleted_user_is_401(gateway: httpx.AsyncClient, system: System) -> None:
    user = await make_user(gateway, apikey=None)
    with system.database.connect() as conn:
        conn.execute("DELETE FROM aigcspace.users WHERE id = %s", (user.id,))
    assert_401(await gateway.get("/api/users/me", headers=user.headers))
    assert_401(await gateway.get("/api/conversations", headers=user.headers))


async def test_token_of_a_deactivated_user_is_401(gateway: httpx.AsyncClient, system: System) -> None:
    user = await make_user(gateway, apikey=None)
    with system.database.connect() as conn:
        conn.execute("UPDATE aigcspace.users SET is_active = false WHERE id = %s", (user.id,))
    assert_401(await gateway.get("/api/users/me", headers=user.headers))
    assert_401(await gateway.get("/api/conversations", headers=user.headers))


async def test_a_cookie_is_not_a_credential(gateway: httpx.AsyncClient, user: UserSession) -> None:
    response = await gateway.get("/api/users/me", cookies={"access_token": user.token})
    assert_401(response)
