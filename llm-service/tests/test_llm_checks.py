"""What is refused before DashScope is called: bad fields, models, keys and other users' conversations."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from llm_testkit import (
    CHAT,
    assert_no_dashscope_call,
    chat_body,
    conversation_count,
    new_user,
    outbox_rows,
    standin_calls,
    wait_for_outcome,
)
from shared.security import ApiKeyCipher

from testkit import System, free_port, make_user

BOTH_MODES = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])


def _insert_model(system: System, *, category: int, active: bool) -> str:
    name = f"test-model-{uuid.uuid4().hex[:10]}"
    with system.database.connect() as conn:
        conn.execute(
            "INSERT INTO aigcspace.model (name, display_name, category, is_active) VALUES (%s, %s, %s, %s)",
            (name, name, category, active),
        )
    return name


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"temperature": 2}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.01}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "body"),
        ({"messages": [{"role": "user"}]}, "messages"),
        ({"model": None}, "model"),
    ],
)
async def test_invalid_fields_are_422_without_a_dashscope_call(
    gateway: httpx.AsyncClient, system: System, change: dict[str, Any], field: str
) -> None:
    user = await new_user(gateway)
    response = await gateway.post(CHAT, json={**chat_body("hi", stream=True), **change}, headers=user.headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == 422
    assert any(field in [str(part) for part in error["loc"]] for error in body["data"]), body
    await assert_no_dashscope_call(system, user)


async def test_a_lone_surrogate_in_a_message_is_422_without_a_dashscope_call(
    gateway: httpx.AsyncClient, system: System
) -> None:
    """Valid JSON, but not text: it could be neither sent to DashScope nor stored (was a 502)."""
    user = await new_user(gateway)
    headers = {**user.headers, "Content-Type": "application/json"}
    body = '{"model": "qwen-turbo", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    response = await gateway.post(CHAT, content=body.encode(), headers=headers)
    assert response.status_code == 422, response.text
    assert "content" in response.json()["data"][0]["loc"]
    await assert_no_dashscope_call(system, user)


@pytest.mark.parametrize("model", ["qwen-\\udfff", "qwen\\u0000turbo"])
async def test_a_model_name_no_row_can_hold_is_unknown(
    gateway: httpx.AsyncClient, system: System, model: str
) -> None:
    """CONTRACT §2: a model that is not an active LLM is a 400; a NUL or a lone surrogate was a 500
    (PostgreSQL cannot compare with it) or a 422."""
    user = await new_user(gateway)
    headers = {**user.headers, "Content-Type": "application/json"}
    body = f'{{"model": "{model}", "messages": [{{"role": "user", "content": "hi"}}]}}'
    response = await gateway.post(CHAT, content=body.encode(), headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("Unknown model: qwen")
    await assert_no_dashscope_call(system, user)


async def test_boundary_values_are_accepted(gateway: httpx.AsyncClient, system: System) -> None:
    user = await new_user(gateway)
    body = chat_body("edge", temperature=0, top_p=1, max_tokens=1)
    response = await gateway.post(CHAT, json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["content"] == "E"


@BOTH_MODES
async def test_unknown_model_is_400(gateway: httpx.AsyncClient, system: System, stream: bool) -> None:
    user = await new_user(gateway)
    body = chat_body("hi", model="no-such-model", stream=stream)
    response = await gateway.post(CHAT, json=body, headers=user.headers)
    assert response.status_code == 400, response.text
    assert response.json() == {"code": 400, "message": "Unknown model: no-such-model.", "data": None}
    await assert_no_dashscope_call(system, user)


async def test_inactive_model_is_400(gateway: httpx.AsyncClient, system: System) -> None:
    name = _insert_model(system, category=0, active=False)
    user = await new_user(gateway)
    response = await gateway.post(CHAT, json=chat_body("hi", model=name), headers=user.headers)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == f"Unknown model: {name}."


@BOTH_MODES
async def test_non_llm_model_is_400(gateway: httpx.AsyncClient, system: System, stream: bool) -> None:
    user = await new_user(gateway)
    body = chat_body("draw a cat", model="wanx2.1-t2i-turbo", stream=stream)
    response = await gateway.post(CHAT, json=body, headers=user.headers)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == "Model wanx2.1-t2i-turbo is not a chat model."
    await assert_no_dashscope_call(system, user)


@BOTH_MODES
async def test_missing_apikey_is_400(gateway: httpx.AsyncClient, stream: bool) -> None:
    user = await make_user(gateway, apikey=None)
    response = await gateway.post(CHAT, json=chat_body("hi", stream=stream), headers=user.headers)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == (
        "No DashScope API key is set: add yours with PUT /api/users/me/apikey."
    )
    assert await conversation_count(gateway, user) == 0


async def test_a_key_stored_under_another_encryption_key_counts_as_unset_and_is_logged(
    gateway: httpx.AsyncClient, system: System
) -> None:
    """A changed APIKEY_ENCRYPTION_KEY: the user is asked to set a key again, the operator is told why."""
    user = await new_user(gateway)
    assert user.apikey is not None
    stored = ApiKeyCipher("some-earlier-apikey-encryption-key-0123456789").encrypt(user.apikey)
    with system.database.connect() as conn:
        conn.execute("UPDATE aigcspace.users SET apikey = %s WHERE id = %s", (stored, user.id))
    response = await gateway.post(CHAT, json=chat_body("hi"), headers=user.headers)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("No DashScope API key is set")
    me = (await gateway.get("/api/users/me", headers=user.headers)).json()["data"]
    assert me["has_apikey"] is False and me["apikey_hint"] is None
    for process in ("llm", "gateway"):
        log = system.log(process)
        warnings = [line for line in log.splitlines() if "DashScope key cannot be decrypted" in line]
        assert warnings and f'"user_id": {user.id}' in warnings[-1], process
        assert user.apikey not in log and stored not in log
    await assert_no_dashscope_call(system, user)


@pytest.mark.parametrize("control", ["\n", "\r\n", "\x00", "\x7f"], ids=["lf", "crlf", "nul", "del"])
async def test_a_key_no_request_can_carry_is_400_without_a_dashscope_call(
    gateway: httpx.AsyncClient, system: System, control: str
) -> None:
    """Stored as given (CONTRACT), but a header cannot hold it: the user is told, DashScope not called."""
    user = await new_user(gateway, apikey=f"sk-pasted-{uuid.uuid4().hex}{control}")
    response = await gateway.post(CHAT, json=chat_body("hi", stream=True), headers=user.headers)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("Your DashScope API key contains a control character")
    await assert_no_dashscope_call(system, user)


@BOTH_MODES
async def test_rejected_apikey_is_400_and_leaves_nothing(
    gateway: httpx.AsyncClient, system: System, stream: bool
) -> None:
    apikey = f"invalid-{uuid.uuid4().hex}"
    user = await new_user(gateway, apikey=apikey)
    response = await gateway.post(CHAT, json=chat_body("hi", stream=stream), headers=user.headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "rejected" in body["message"] and "DashScope" in body["message"]
    assert apikey not in response.text
    (call,) = await standin_calls(system, apikey)  # the user's own key was used
    assert call["outcome"] == "error"
    assert await conversation_count(gateway, user) == 0
    assert outbox_rows(system, user_id=user.id) == []
    assert apikey not in system.log("llm")


@BOTH_MODES
async def test_another_users_conversation_is_404_without_a_dashscope_call(
    gateway: httpx.AsyncClient, system: System, stream: bool
) -> None:
    owner = await new_user(gateway)
    created = await gateway.post("/api/conversations", json={"title": "private"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    intruder = await new_user(gateway)
    body = chat_body("let me in", stream=stream, conversation_id=created.json()["data"]["id"])
    response = await gateway.post(CHAT, json=body, headers=intruder.headers)
    assert response.status_code == 404, response.text
    assert response.json() == {"code": 404, "message": "Conversation not found.", "data": None}
    await assert_no_dashscope_call(system, intruder)


async def test_a_missing_key_is_reported_before_someone_elses_conversation(
    gateway: httpx.AsyncClient,
) -> None:
    """The key and the conversation are checked at once; the key's answer still comes first."""
    owner = await new_user(gateway)
    created = await gateway.post("/api/conversations", json={"title": "private"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    keyless = await make_user(gateway, apikey=None)
    body = chat_body("let me in", conversation_id=created.json()["data"]["id"])
    response = await gateway.post(CHAT, json=body, headers=keyless.headers)
    assert response.status_code == 400, response.text
    assert "No DashScope API key" in response.json()["message"]


@pytest.mark.parametrize("conversation_id", [987654321, 0, -5])
async def test_missing_conversation_is_404(
    gateway: httpx.AsyncClient, system: System, conversation_id: int
) -> None:
    user = await new_user(gateway)
    body = chat_body("hello?", conversation_id=conversation_id)
    response = await gateway.post(CHAT, json=body, headers=user.headers)
    assert response.status_code == 404, response.text
    await assert_no_dashscope_call(system, user)


async def test_models_lists_active_llms_with_pricing(gateway: httpx.AsyncClient, system: System) -> None:
    inactive = _insert_model(system, category=0, active=False)
    user = await new_user(gateway)
    response = await gateway.get("/api/llm/models", headers=user.headers)
    assert response.status_code == 200, response.text
    models = {model["name"]: model for model in response.json()["data"]}
    assert {"qwen-turbo", "qwen-plus", "qwen-max", "qwen3-max"} <= set(models)
    assert "wanx2.1-t2i-turbo" not in models and inactive not in models
    assert all(model["category"] == 0 for model in models.values())
    turbo = models["qwen-turbo"]
    assert turbo["display_name"] == "Qwen Turbo"
    assert turbo["pricing"]["billing_mode"] == "simple"
    assert turbo["pricing"]["currency"] == "CNY"
    assert float(turbo["pricing"]["input_price"]) == 0.0003  # a decimal string
    assert isinstance(turbo["pricing"]["input_price"], str)
    tiers = models["qwen-plus"]["pricing"]["tiers"]
    assert [tier["min_tokens"] for tier in tiers] == [0, 128000, 256000]
    assert tiers[0] == {
        "min_tokens": 0,
        "max_tokens": 128000,
        "input_price": "0.000800",
        "output_price": "0.002000",
    }


async def test_a_model_added_in_the_tables_is_listed_at_once(
    gateway: httpx.AsyncClient, system: System
) -> None:
    user = await new_user(gateway)
    name = _insert_model(system, category=0, active=True)
    response = await gateway.get("/api/llm/models", headers=user.headers)
    listed = {model["name"]: model for model in response.json()["data"]}
    assert listed[name]["pricing"] is None
    with system.database.connect() as conn:
        conn.execute(
            "INSERT INTO aigcspace.model_price (model_id, billing_mode, input_price, output_price) "
            "SELECT id, 'simple', 0.001, 0.002 FROM aigcspace.model WHERE name = %s",
            (name,),
        )
    response = await gateway.get("/api/llm/models", headers=user.headers)
    listed = {model["name"]: model for model in response.json()["data"]}
    assert listed[name]["pricing"]["input_price"] == "0.001000"
    # And the new model can be used for chat right away.
    chat = await gateway.post(CHAT, json=chat_body("new model", model=name), headers=user.headers)
    assert chat.status_code == 200, chat.text


async def test_conversation_service_down_is_503_without_a_dashscope_call(
    gateway: httpx.AsyncClient, system: System
) -> None:
    """Neither the owner check nor a new conversation can be done: DashScope is not called (a reply
    with nowhere to be kept would be paid for and lost)."""
    user = await new_user(gateway)
    created = await gateway.post("/api/conversations", json={"title": "t"}, headers=user.headers)
    assert created.status_code == 201, created.text
    await asyncio.to_thread(system.stop, "conversation")
    try:
        in_conversation = chat_body("hi", conversation_id=created.json()["data"]["id"])
        checked = await gateway.post(CHAT, json=in_conversation, headers=user.headers)
        creating = await gateway.post(CHAT, json=chat_body("hi", stream=True), headers=user.headers)
    finally:
        await asyncio.to_thread(system.start, "conversation")
    for response in (checked, creating):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "5"
    await assert_no_dashscope_call(system, user)


async def test_a_conversation_that_cannot_be_created_stops_dashscope_and_leaves_nothing(
    gateway: httpx.AsyncClient, system: System
) -> None:
    """conversation-service up but its database not: the creation fails after DashScope started."""
    user = await new_user(gateway)
    unreachable = {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    await asyncio.to_thread(system.stop, "conversation")
    try:
        await asyncio.to_thread(system.start, "conversation", extra_env=unreachable)
        new_conversation = chat_body("[[tokens:200]] [[delay_ms:20]]", stream=True)
        creating = await gateway.post(CHAT, json=new_conversation, headers=user.headers)
    finally:
        await asyncio.to_thread(system.stop, "conversation")
        await asyncio.to_thread(system.start, "conversation")
    assert creating.status_code == 503, creating.text
    assert creating.headers["content-type"].startswith("application/json")
    assert user.apikey is not None
    (call,) = await standin_calls(system, user.apikey)
    assert call["stream"] is True
    await wait_for_outcome(system, user.apikey, "cancelled")
    assert outbox_rows(system, user_id=user.id) == []
