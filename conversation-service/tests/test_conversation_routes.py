"""The conversation routes of CONTRACT §2, called on conversation-service as the gateway calls them."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from testkit import System, create_db_user, free_port, internal_headers

AUDIENCE = "conversation-service"
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class Caller:
    """One user calling conversation-service with a fresh internal credential per call."""

    def __init__(self, system: System, client: httpx.AsyncClient, user_id: int) -> None:
        self.system, self.client, self.user_id = system, client, user_id

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = internal_headers(self.system, user_id=self.user_id, audience=AUDIENCE)
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def create(self, title: str | None = None) -> dict[str, Any]:
        response = await self.call(
            "POST", "/api/conversations", json={} if title is None else {"title": title}
        )
        assert response.status_code == 201, response.text
        return response.json()["data"]


@pytest.fixture
def alice(system: System, conversation_api: httpx.AsyncClient) -> Caller:
    return Caller(system, conversation_api, create_db_user(system.database))


@pytest.fixture
def bob(system: System, conversation_api: httpx.AsyncClient) -> Caller:
    return Caller(system, conversation_api, create_db_user(system.database))


async def test_create_returns_201_with_the_conversation_in_the_envelope(alice: Caller) -> None:
    response = await alice.call("POST", "/api/conversations", json={"title": "Trip to Hangzhou"})
    assert response.status_code == 201
    body = response.json()
    assert (body["code"], body["message"]) == (201, "success")
    data = body["data"]
    assert data["title"] == "Trip to Hangzhou"
    assert data["user_id"] == alice.user_id
    assert (data["total_input_tokens"], data["total_output_tokens"], data["total_tokens"]) == (0, 0, 0)
    assert data["bill"] == "0.0000"
    assert ISO_WITH_OFFSET.match(data["created_at"]) and ISO_WITH_OFFSET.match(data["updated_at"])
    assert set(data) == {
        "id",
        "user_id",
        "title",
        "total_input_tokens",
        "total_output_tokens",
        "total_tokens",
        "bill",
        "created_at",
        "updated_at",
    }


async def test_create_without_a_title_is_new_chat(alice: Caller) -> None:
    assert (await alice.create())["title"] == "New chat"
    response = await alice.call("POST", "/api/conversations")  # no body at all
    assert response.status_code == 201
    assert response.json()["data"]["title"] == "New chat"


@pytest.mark.parametrize("title", ["", "x" * 201, 42, "nul\x00byte"])
async def test_create_rejects_a_bad_title(alice: Caller, title: object) -> None:
    response = await alice.call("POST", "/api/conversations", json={"title": title})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 422
    assert body["data"][0]["loc"][-1] == "title"
    if title in ("", "x" * 201):  # said in characters, as the limit is
        assert "character" in body["data"][0]["msg"] and "character" in body["message"], body


async def test_title_of_200_characters_is_accepted(alice: Caller) -> None:
    assert (await alice.create("y" * 200))["title"] == "y" * 200


async def test_list_is_newest_first_with_total_count(alice: Caller) -> None:
    ids = [(await alice.create(f"c{i}"))["id"] for i in range(3)]
    response = await alice.call("GET", "/api/conversations")
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    assert [c["id"] for c in response.json()["data"]] == ids[::-1]


async def test_list_pages_with_limit_and_offset(alice: Caller) -> None:
    ids = [(await alice.create(f"c{i}"))["id"] for i in range(5)]
    response = await alice.call("GET", "/api/conversations", params={"limit": 2, "offset": 1})
    assert response.headers["X-Total-Count"] == "5"
    assert [c["id"] for c in response.json()["data"]] == [ids[3], ids[2]]


async def test_renaming_moves_a_conversation_to_the_top(alice: Caller) -> None:
    first = await alice.create("first")
    await alice.create("second")
    await alice.call("PUT", f"/api/conversations/{first['id']}", json={"title": "first, renamed"})
    response = await alice.call("GET", "/api/conversations")
    assert response.json()["data"][0]["id"] == first["id"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"offset": -1}, {"limit": "many"}])
async def test_list_rejects_bad_paging(alice: Caller, params: dict[str, object]) -> None:
    response = await alice.call("GET", "/api/conversations", params=params)
    assert response.status_code == 422
    assert response.json()["code"] == 422


async def test_list_accepts_limit_200(alice: Caller) -> None:
    response = await alice.call("GET", "/api/conversations", params={"limit": 200})
    assert response.status_code == 200


async def test_list_shows_only_the_callers_conversations(alice: Caller, bob: Caller) -> None:
    await alice.create("alice's")
    response = await bob.call("GET", "/api/conversations")
    assert response.json()["data"] == []
    assert response.headers["X-Total-Count"] == "0"


async def test_detail_has_the_conversation_and_its_messages(alice: Caller) -> None:
    created = await alice.create("detail")
    response = await alice.call("GET", f"/api/conversations/{created['id']}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["messages"] == []
    assert {k: v for k, v in data.items() if k != "messages"} == created


async def test_rename_returns_the_updated_conversation(alice: Caller) -> None:
    created = await alice.create("old")
    response = await alice.call("PUT", f"/api/conversations/{created['id']}", json={"title": "new"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["id"], data["title"]) == (created["id"], "new")
    assert data["updated_at"] >= created["updated_at"]
    detail = await alice.call("GET", f"/api/conversations/{created['id']}")
    assert detail.json()["data"]["title"] == "new"


@pytest.mark.parametrize("body", [{"title": ""}, {"title": "z" * 201}, {}, {"title": None}])
async def test_rename_rejects_a_bad_title(alice: Caller, body: dict[str, object]) -> None:
    created = await alice.create("keep")
    response = await alice.call("PUT", f"/api/conversations/{created['id']}", json=body)
    assert response.status_code == 422


async def test_delete_removes_the_conversation_and_its_messages(system: System, alice: Caller) -> None:
    created = await alice.create("doomed")
    with system.database.connect() as conn:
        conn.execute(
            "INSERT INTO aigcspace.ai_message (conversation_id, role, content) VALUES (%s, 'user', 'hi')",
            (created["id"],),
        )
    response = await alice.call("DELETE", f"/api/conversations/{created['id']}")
    assert response.status_code == 200
    assert response.json() == {"code": 200, "message": "success", "data": None}
    assert (await alice.call("GET", f"/api/conversations/{created['id']}")).status_code == 404
    with system.database.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM aigcspace.ai_message WHERE conversation_id = %s", (created["id"],)
        ).fetchone()
    assert row == (0,)


ROUTES = [
    ("GET", "/api/conversations/{id}", None),
    ("PUT", "/api/conversations/{id}", {"title": "mine now"}),
    ("DELETE", "/api/conversations/{id}", None),
    ("GET", "/api/conversations/{id}/messages", None),
]


async def test_head_tells_whether_the_conversation_is_the_callers(alice: Caller, bob: Caller) -> None:
    """The owner check llm-service makes before a chat: a status, no body."""
    created = await alice.create("mine")
    own = await alice.call("HEAD", f"/api/conversations/{created['id']}")
    assert (own.status_code, own.content) == (200, b"")
    assert (await bob.call("HEAD", f"/api/conversations/{created['id']}")).status_code == 404
    assert (await alice.call("HEAD", f"/api/conversations/{2**62}")).status_code == 404
    assert (await alice.call("HEAD", "/api/conversations/0")).status_code == 404


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_someone_elses_conversation_is_not_found(
    alice: Caller, bob: Caller, method: str, path: str, body: dict[str, str] | None
) -> None:
    created = await alice.create("private")
    response = await bob.call(method, path.format(id=created["id"]), json=body)
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": "Conversation not found.", "data": None}
    still = await alice.call("GET", f"/api/conversations/{created['id']}")
    assert still.json()["data"]["title"] == "private"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize("missing_id", [2**62, 0, -5, 2**70])
async def test_a_missing_conversation_is_not_found(
    alice: Caller, method: str, path: str, body: dict[str, str] | None, missing_id: int
) -> None:
    response = await alice.call(method, path.format(id=missing_id), json=body)
    assert response.status_code == 404
    assert response.json()["message"] == "Conversation not found."


async def test_a_non_integer_id_is_422(alice: Caller) -> None:
    response = await alice.call("GET", "/api/conversations/abc")
    assert response.status_code == 422
    assert response.json()["code"] == 422


async def test_without_an_internal_credential_it_is_401(conversation_api: httpx.AsyncClient) -> None:
    response = await conversation_api.get("/api/conversations")
    assert response.status_code == 401
    assert response.json()["code"] == 401


async def test_a_credential_for_another_service_is_401(
    system: System, conversation_api: httpx.AsyncClient
) -> None:
    headers = internal_headers(system, user_id=create_db_user(system.database), audience="billing-service")
    response = await conversation_api.get("/api/conversations", headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("refused_by", ["the network", "the server"])
async def test_an_unreachable_database_is_503_not_500(system: System, alice: Caller, refused_by: str) -> None:
    """An outage is the caller's cue to try again later; it is not reported as a bug. The server
    refusing the connection (here: no such database) is an outage too, not only a port nobody answers."""
    if refused_by == "the network":
        database_url = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    else:
        database_url = system.database.url.rsplit("/", 1)[0] + "/aigcspace_no_such_database"
    system.stop("conversation")
    try:
        system.start("conversation", extra_env={"DATABASE_URL": database_url})
        response = await alice.call("GET", "/api/conversations")
        log = system.log("conversation")
    finally:
        system.stop("conversation")
        system.start("conversation")
    assert response.status_code == 503, response.text
    assert response.json() == {
        "code": 503,
        "message": "The service is unavailable, please try again later.",
        "data": None,
    }
    assert response.headers["Retry-After"] == "5"
    assert response.headers["X-Request-Id"]  # answered inside the request log, like any other error
    if refused_by == "the server":  # the operator is told why
        assert "SQLSTATE 3D000" in log
    assert (await alice.call("GET", "/api/conversations")).status_code == 200
