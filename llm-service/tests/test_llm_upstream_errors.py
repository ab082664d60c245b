"""DashScope failing, before any output (plain JSON errors, nothing kept) and after it (the error frame)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from llm_testkit import (
    CHAT,
    chat_body,
    conversation_count,
    frame_data,
    new_user,
    outbox_rows,
    sse_frames,
    standin_calls,
    wait_for_event,
    wait_for_outcome,
)

from testkit import LlmInstances, System, internal_headers

BOTH_MODES = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])


@BOTH_MODES
@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        (
            "InvalidParameter",
            400,
            "DashScope refused the request (InvalidParameter): Required parameter(s) missing or invalid, "
            "please check the request parameters.",
        ),
        (
            "DataInspectionFailed",
            400,
            "DashScope refused the request (DataInspectionFailed): Input or output data may contain "
            "inappropriate content.",
        ),
        (
            "Throttling.RateQuota",
            429,
            "DashScope is throttling requests (Throttling.RateQuota): Requests rate limit exceeded, "
            "please try again later.",
        ),
        (
            "Model.AccessDenied",
            400,
            "DashScope refused the request (Model.AccessDenied): Model access denied.",
        ),
        ("InternalError", 502, None),
        ("SystemError", 502, None),
        ("ModelUnavailable", 502, None),
    ],
)
async def test_failure_before_output_is_a_json_error_and_leaves_nothing(
    gateway: httpx.AsyncClient,
    system: System,
    stream: bool,
    code: str,
    status: int,
    message: str | None,
) -> None:
    user = await new_user(gateway)
    response = await gateway.post(
        CHAT, json=chat_body(f"[[error:{code}]]", stream=stream), headers=user.headers
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert (body["code"], body["data"]) == (status, None)
    if message is not None:
        assert body["message"] == message
    else:
        assert body["message"].startswith(f"DashScope failed ({code}): ")
    assert "X-Conversation-Id" not in response.headers
    assert await conversation_count(gateway, user) == 0
    assert outbox_rows(system, user_id=user.id) == []
    assert user.apikey is not None
    assert (await standin_calls(system, user.apikey))[-1]["outcome"] == "error"


@pytest.mark.parametrize("code", ["InternalError", "Throttling.RateQuota"])
async def test_failure_after_output_ends_the_stream_with_an_error_frame(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any, code: str
) -> None:
    user = await new_user(gateway)
    content = f"[[midstream_error:{code}]] [[tokens:40]]"
    response = await gateway.post(CHAT, json=chat_body(content, stream=True), headers=user.headers)
    assert response.status_code == 200, response.text
    frames = [frame_data(frame) for frame in sse_frames(response.content)]
    assert frames[-1] == "[DONE]"
    error_frame = frames[-2]
    chunks = frames[:-2]
    assert chunks and all(chunk["finish_reason"] is None for chunk in chunks)
    text = "".join(chunk["content"] for chunk in chunks)
    assert len(text) == 20  # the stand-in fails after half of the pieces
    assert error_frame["content"] == ""
    assert error_frame["finish_reason"] == "error"
    assert error_frame["usage"] == {
        "input_tokens": len(content),
        "output_tokens": 20,
        "total_tokens": len(content) + 20,
    }
    assert error_frame["error"]["code"] == code
    assert error_frame["error"]["message"]

    event = await wait_for_event(stream_redis, conversation_id=int(response.headers["X-Conversation-Id"]))
    assert (event["status"], event["finish_reason"]) == ("failed", "error")
    assert event["assistant_content"] == text
    assert event["usage"] == error_frame["usage"]


@pytest.fixture(scope="module")
def slow_llm(llm_instances: LlmInstances) -> str:
    """An llm-service that gives DashScope 2 s for a first event (or a whole reply), 1 s for each later one."""
    return llm_instances.url(
        DASHSCOPE_FIRST_TOKEN_TIMEOUT_S="2",
        DASHSCOPE_IDLE_TIMEOUT_S="1",
        DASHSCOPE_REQUEST_TIMEOUT_S="2",
    )


async def _direct_chat(url: str, system: System, user_id: int, body: dict[str, Any]) -> httpx.Response:
    """Straight to an extra llm-service instance, with the credential the gateway would send."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        headers = internal_headers(system, user_id=user_id, audience="llm-service")
        return await client.post(CHAT, json=body, headers=headers)


@BOTH_MODES
async def test_no_first_event_in_time_is_504(
    gateway: httpx.AsyncClient, system: System, slow_llm: str, stream: bool
) -> None:
    user = await new_user(gateway)
    response = await _direct_chat(slow_llm, system, user.id, chat_body("[[delay_ms:6000]] x", stream=stream))
    assert response.status_code == 504, response.text
    assert response.json()["message"].startswith("DashScope did not answer in time")
    assert user.apikey is not None
    await wait_for_outcome(system, user.apikey, "cancelled")  # the upstream call was dropped
    assert await conversation_count(gateway, user) == 0
    assert outbox_rows(system, user_id=user.id) == []


async def test_silence_after_output_ends_the_stream_with_a_timeout_frame(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any, slow_llm: str
) -> None:
    user = await new_user(gateway)
    content = "[[stall]] [[tokens:40]]"
    response = await _direct_chat(slow_llm, system, user.id, chat_body(content, stream=True))
    assert response.status_code == 200, response.text
    frames = [frame_data(frame) for frame in sse_frames(response.content)]
    assert [frame["content"] for frame in frames[:2]] == ["Lore", "m ip"]
    assert frames[2]["finish_reason"] == "error"
    assert frames[2]["error"]["code"] == "RequestTimeOut"
    assert frames[2]["usage"]["output_tokens"] == 8
    assert frames[3:] == ["[DONE]"]
    assert user.apikey is not None
    await wait_for_outcome(system, user.apikey, "cancelled")
    event = await wait_for_event(stream_redis, conversation_id=int(response.headers["X-Conversation-Id"]))
    assert (event["status"], event["assistant_content"]) == ("failed", "Lorem ip")


@BOTH_MODES
async def test_refused_connection_is_502(gateway: httpx.AsyncClient, system: System, stream: bool) -> None:
    user = await new_user(gateway)
    system.stop("standin")  # DashScope is down: every connection is refused
    try:
        response = await gateway.post(CHAT, json=chat_body("anyone?", stream=stream), headers=user.headers)
    finally:
        system.start("standin")
    assert response.status_code == 502, response.text
    assert response.json()["message"] == "DashScope could not be reached."
    assert await conversation_count(gateway, user) == 0
    assert outbox_rows(system, user_id=user.id) == []


@pytest.fixture(scope="module")
def unconnectable_port() -> Iterator[int]:
    """A port whose listen queue is full: connections to it neither succeed nor fail, they hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


async def test_no_connection_in_time_is_504(
    gateway: httpx.AsyncClient, system: System, llm_instances: LlmInstances, unconnectable_port: int
) -> None:
    url = llm_instances.url(
        DASHSCOPE_BASE_URL=f"http://127.0.0.1:{unconnectable_port}/api/v1",
        DASHSCOPE_CONNECT_TIMEOUT_S="0.5",
    )
    user = await new_user(gateway)
    response = await _direct_chat(url, system, user.id, chat_body("hello?", stream=True))
    assert response.status_code == 504, response.text
    assert response.json()["message"] == "DashScope did not answer in time: no connection within 0.5 s."
