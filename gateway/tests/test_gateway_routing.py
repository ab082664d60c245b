"""The gateway in front of the real services: routing, isolation of the services, request ids, errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from shared.tokens import create_internal_token

from testkit import System, UserSession, free_port, make_user


@pytest.fixture(scope="module")
async def member(system: System) -> UserSession:
    async with httpx.AsyncClient(base_url=system.gateway, timeout=30) as client:
        return await make_user(client, apikey=None)


async def test_conversations_are_reached_through_the_gateway(
    gateway: httpx.AsyncClient, member: UserSession
) -> None:
    created = await gateway.post(
        "/api/conversations", json={"title": "via the gateway"}, headers=member.headers
    )
    assert created.status_code == 201, created.text
    conversation = created.json()["data"]
    assert conversation["user_id"] == member.id
    listed = await gateway.get("/api/conversations?limit=200", headers=member.headers)
    assert listed.status_code == 200
    assert conversation["id"] in [item["id"] for item in listed.json()["data"]]
    assert int(listed.headers["x-total-count"]) >= 1
    one = await gateway.get(f"/api/conversations/{conversation['id']}", headers=member.headers)
    assert one.status_code == 200 and one.json()["data"]["title"] == "via the gateway"


async def test_a_service_error_envelope_passes_through(
    gateway: httpx.AsyncClient, member: UserSession
) -> None:
    response = await gateway.post("/api/conversations", json={"title": "t" * 201}, headers=member.headers)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 422 and isinstance(body["data"], list)


def direct_credentials(system: System, user: UserSession, audience: str) -> dict[str, dict[str, str]]:
    secret = system.env["INTERNAL_SECRET"]
    other_audience = "billing-service" if audience != "billing-service" else "llm-service"
    return {
        "nothing": {},
        "the user's bearer token": user.headers,
        "a made-up X-User-Id": {"X-User-Id": str(user.id)},
        "the user's token as internal token": {"X-Internal-Token": user.token},
        "an internal token signed with another secret": {
            "X-Internal-Token": create_internal_token(
                secret="z" * 40, user_id=user.id, audience=audience, caller="gateway"
            )
        },
        "an internal token for another service": {
            "X-Internal-Token": create_internal_token(
                secret=secret, user_id=user.id, audience=other_audience, caller="gateway"
            )
        },
        "an internal token signed with JWT_SECRET": {
            "X-Internal-Token": create_internal_token(
                secret=system.env["JWT_SECRET"], user_id=user.id, audience=audience, caller="gateway"
            )
        },
        "an internal token with alg none": {
            "X-Internal-Token": jwt.encode(
                {"sub": str(user.id), "aud": audience, "iss": "aigcspace-internal", "exp": 9_999_999_999},
                None,
                algorithm="none",
            )
        },
    }


CASES = [
    "nothing",
    "the user's bearer token",
    "a made-up X-User-Id",
    "the user's token as internal token",
    "an internal token signed with another secret",
    "an internal token for another service",
    "an internal token signed with JWT_SECRET",
    "an internal token with alg none",
]


@pytest.mark.parametrize("case", CASES)
async def test_conversation_service_refuses_calls_that_bypass_the_gateway(
    case: str, system: System, member: UserSession
) -> None:
    headers = direct_credentials(system, member, "conversation-service")[case]
    async with httpx.AsyncClient(base_url=system.url("conversation"), timeout=10) as direct:
        response = await direct.get("/api/conversations", headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 401


@pytest.mark.parametrize("case", CASES)
async def test_llm_service_refuses_calls_that_bypass_the_gateway(
    case: str, system: System, member: UserSession
) -> None:
    headers = direct_credentials(system, member, "llm-service")[case]
    async with httpx.AsyncClient(base_url=system.url("llm"), timeout=10) as direct:
        response = await direct.post(
            "/api/llm/chat",
            headers=headers,
            json={"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 401


async def test_the_gateway_credential_is_what_the_service_accepts(
    system: System, member: UserSession
) -> None:
    """The control for the refusals above: a correct internal credential does get in."""
    headers = direct_credentials(system, member, "conversation-service")["nothing"]
    headers["X-Internal-Token"] = create_internal_token(
        secret=system.env["INTERNAL_SECRET"],
        user_id=member.id,
        audience="conversation-service",
        caller="gateway",
    )
    async with httpx.AsyncClient(base_url=system.url("conversation"), timeout=10) as direct:
        response = await direct.get("/api/conversations", headers=headers)
    assert response.status_code == 200


async def test_a_given_request_id_comes_back_and_reaches_the_service_log(
    gateway: httpx.AsyncClient, system: System, member: UserSession
) -> None:
    request_id = f"trace-{uuid.uuid4().hex}"
    response = await gateway.get("/api/conversations", headers={**member.headers, "X-Request-Id": request_id})
    assert response.status_code == 200
    assert response.headers.get_list("x-request-id") == [request_id]
    for _ in range(50):
        if request_id in system.log("conversation"):
            break
        await asyncio.sleep(0.1)
    assert request_id in system.log("conversation")
    assert request_id in system.log("gateway")


async def test_a_stopped_service_is_503_in_the_envelope(
    gateway: httpx.AsyncClient, system: System, member: UserSession
) -> None:
    system.stop("billing")
    try:
        response = await gateway.get("/api/billing/anything", headers=member.headers)
        assert response.status_code == 503
        assert response.json() == {
            "code": 503,
            "message": "The billing service is unavailable.",
            "data": None,
        }
        conversations = await gateway.get("/api/conversations", headers=member.headers)
        assert conversations.status_code == 200  # the other services are unaffected
    finally:
        await asyncio.to_thread(system.start, "billing")


async def test_an_unreachable_database_is_503_for_a_proxied_call_too(
    gateway: httpx.AsyncClient, system: System, member: UserSession
) -> None:
    """The user check before a proxied call fails like any other query in an outage: 503, try later."""
    unreachable = {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    await asyncio.to_thread(system.stop, "gateway")
    try:
        await asyncio.to_thread(system.start, "gateway", extra_env=unreachable)
        response = await gateway.get("/api/conversations", headers=member.headers)
    finally:
        await asyncio.to_thread(system.stop, "gateway")
        await asyncio.to_thread(system.start, "gateway")
    assert response.status_code == 503, response.text
    assert response.json() == {
        "code": 503,
        "message": "The service is unavailable, please try again later.",
        "data": None,
    }
    assert response.headers["retry-after"] == "5" and response.headers["x-request-id"]
    assert (await gateway.get("/api/conversations", headers=member.headers)).status_code == 200


TOO_LARGE = {"code": 413, "message": "The request body is too large.", "data": None}


async def test_a_body_over_one_mebibyte_is_413(gateway: httpx.AsyncClient, member: UserSession) -> None:
    response = await gateway.post(
        "/api/conversations", content=b"{" + b" " * (1024 * 1024) + b"}", headers=member.headers
    )
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("chunked", [False, True], ids=["by-length", "chunked"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/auth/register"), ("POST", "/api/auth/login"), ("PUT", "/api/users/me/apikey")],
)
async def test_the_gateways_own_routes_refuse_a_body_over_the_limit_too(
    gateway: httpx.AsyncClient, member: UserSession, method: str, path: str, chunked: bool
) -> None:
    """Registration and login need no token: without the limit anyone could make the gateway parse any
    amount of JSON."""
    padded = b'{"username": "nobody_here", "password": "' + b"p" * (1024 * 1024) + b'"}'

    async def in_pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(padded), 64 * 1024):
            yield padded[start : start + 64 * 1024]

    headers = {**member.headers, "Content-Type": "application/json"}
    response = await gateway.request(
        method, path, content=in_pieces() if chunked else padded, headers=headers
    )
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert response.headers["x-request-id"]  # answered inside the request log


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/llm", "/api/users/someone", "/nowhere"])
async def test_unknown_paths_are_404_in_the_envelope(
    gateway: httpx.AsyncClient, member: UserSession, path: str
) -> None:
    response = await gateway.get(path, headers=member.headers)
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": "Not found.", "data": None}


async def test_a_service_redirect_does_not_reveal_the_service_address(
    gateway: httpx.AsyncClient, system: System, member: UserSession
) -> None:
    response = await gateway.get("/api/conversations/", headers=member.headers)
    location = response.headers.get("location", "")
    assert str(system.ports["conversation"]) not in location
    assert response.status_code in (307, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/auth/login"), ("DELETE", "/api/users/me"), ("OPTIONS", "/api/conversations")],
)
async def test_wrong_methods_are_405_in_the_envelope(
    gateway: httpx.AsyncClient, member: UserSession, method: str, path: str
) -> None:
    response = await gateway.request(method, path, headers=member.headers)
    assert response.status_code == 405
    assert response.json() == {"code": 405, "message": "Method not allowed.", "data": None}


async def test_health_and_readiness(gateway: httpx.AsyncClient) -> None:
    assert (await gateway.get("/healthz")).status_code == 200
    ready = await gateway.get("/readyz")
    assert ready.status_code == 200 and ready.json()["data"]["status"] == "ready"
    for path in ("/healthz", "/readyz"):  # what some load balancers send
        assert (await gateway.head(path)).status_code == 200


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
async def test_no_api_pages_outside_the_envelope(gateway: httpx.AsyncClient, path: str) -> None:
    response = await gateway.get(path)
    assert response.json() == {"code": 404, "message": "Not found.", "data": None}


async def test_the_ui_is_served_at_the_root(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
