"""The official `dashscope` SDK, unchanged, against the running stand-in."""

from __future__ import annotations

from typing import Any

import dashscope
import pytest
import requests
from dashscope import AioGeneration, Generation
from dashscope_standin.directives import filler
from standin_server import StandIn

MODEL = "qwen-plus"


def user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


def call(standin: StandIn, content: str, api_key: str = "sk-test", **kwargs: Any) -> Any:
    """A non-stream `Generation.call` in message format."""
    kwargs.setdefault("result_format", "message")
    return Generation.call(
        model=MODEL,
        messages=user(content),
        base_address=standin.base_address,
        api_key=api_key,
        **kwargs,
    )


async def stream(standin: StandIn, content: str, api_key: str = "sk-test", **kwargs: Any) -> list[Any]:
    """Every response of an `AioGeneration` stream in message format."""
    kwargs.setdefault("result_format", "message")
    responses = await AioGeneration.call(
        model=MODEL,
        messages=user(content),
        base_address=standin.base_address,
        api_key=api_key,
        stream=True,
        **kwargs,
    )
    return [response async for response in responses]


def test_non_stream_echoes_last_user_message_with_usage(standin: StandIn) -> None:
    response = call(standin, "hi")

    assert response.status_code == 200
    choice = response.output.choices[0]
    assert choice.message.content == "Echo: hi"
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert response.usage.input_tokens == 2
    assert response.usage.output_tokens == 8
    assert response.usage.total_tokens == 10
    assert response.request_id


def test_text_format_is_the_default_and_prompt_is_accepted(standin: StandIn) -> None:
    response = Generation.call(model=MODEL, prompt="hi", base_address=standin.base_address, api_key="sk-test")

    assert response.status_code == 200
    assert response.output.text == "Echo: hi"
    assert response.output.finish_reason == "stop"
    assert response.output.choices is None


def test_input_tokens_count_every_message_and_reply_uses_the_last_user_one(standin: StandIn) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Echo: first"},
        {"role": "user", "content": "second 你好"},
    ]
    response = Generation.call(
        model="any-model-name",
        messages=messages,
        result_format="message",
        base_address=standin.base_address,
        api_key="sk-test",
    )

    assert response.output.choices[0].message.content == "Echo: second 你好"
    assert response.usage.input_tokens == sum(len(m["content"]) for m in messages)
    assert response.usage.output_tokens == len("Echo: second 你好")


async def test_incremental_stream_arrives_in_pieces(standin: StandIn, aio_sdk: None) -> None:
    reply = "Echo: streaming works"
    responses = await stream(standin, "streaming works", incremental_output=True)

    assert all(r.status_code == 200 for r in responses)
    assert len(responses) == 7  # 21 characters in pieces of 4, then the final event
    deltas = [r.output.choices[0].message.content for r in responses]
    assert all(0 < len(delta) <= 4 for delta in deltas[:-1])
    assert deltas[-1] == ""
    assert "".join(deltas) == reply
    assert [r.output.choices[0].finish_reason for r in responses] == ["null"] * 6 + ["stop"]
    assert [r.usage.output_tokens for r in responses] == [4, 8, 12, 16, 20, 21, 21]
    assert all(r.usage.input_tokens == len("streaming works") for r in responses)
    assert responses[-1].usage.total_tokens == len("streaming works") + len(reply)
    assert len({r.request_id for r in responses}) == 1


async def test_cumulative_stream_when_incremental_output_is_not_sent(standin: StandIn, aio_sdk: None) -> None:
    responses = await stream(standin, "cumulative")

    texts = [r.output.choices[0].message.content for r in responses]
    assert texts == ["Echo", "Echo: cu", "Echo: cumula", "Echo: cumulative", "Echo: cumulative"]
    assert responses[-1].output.choices[0].finish_reason == "stop"


async def test_sdk_merges_incremental_output_false_into_full_text(standin: StandIn, aio_sdk: None) -> None:
    responses = await stream(standin, "merged", api_key="sk-merge", incremental_output=False)

    assert responses[-1].output.choices[0].message.content == "Echo: merged"
    # dashscope >= 1.25 asks for deltas on the wire and rebuilds the full text itself.
    assert standin.calls("sk-merge")[-1]["parameters"]["incremental_output"] is True


def test_sync_stream_in_text_format(standin: StandIn) -> None:
    responses = list(
        Generation.call(
            model=MODEL,
            prompt="sync",
            stream=True,
            incremental_output=True,
            base_address=standin.base_address,
            api_key="sk-test",
        )
    )

    assert "".join(r.output.text for r in responses) == "Echo: sync"
    assert [r.output.finish_reason for r in responses] == ["null", "null", "null", "stop"]


def test_max_tokens_cuts_the_reply(standin: StandIn) -> None:
    response = call(standin, "hello there", max_tokens=5)

    assert response.output.choices[0].message.content == "Echo:"
    assert response.output.choices[0].finish_reason == "length"
    assert response.usage.output_tokens == 5


async def test_max_tokens_cuts_a_stream(standin: StandIn, aio_sdk: None) -> None:
    responses = await stream(standin, "hello there", incremental_output=True, max_tokens=7)

    assert "".join(r.output.choices[0].message.content for r in responses) == "Echo: h"
    assert responses[-1].output.choices[0].finish_reason == "length"
    assert responses[-1].usage.output_tokens == 7


def test_tokens_directive_gives_exactly_n_characters_of_filler(standin: StandIn) -> None:
    response = call(standin, "write [[tokens:300]] please")

    content = response.output.choices[0].message.content
    assert len(content) == 300
    assert content == filler(300)
    assert response.usage.output_tokens == 300
    assert response.usage.input_tokens == len("write [[tokens:300]] please")


def test_input_tokens_directive_overrides_the_count(standin: StandIn) -> None:
    response = call(standin, "[[input_tokens:150000]] big prompt")

    assert response.usage.input_tokens == 150000
    assert response.usage.total_tokens == 150000 + len("Echo: [[input_tokens:150000]] big prompt")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InvalidParameter", 400),
        ("DataInspectionFailed", 400),
        ("Throttling.RateQuota", 429),
        ("InternalError", 500),
        ("ModelUnavailable", 503),
        ("Some.UnknownCode", 400),
    ],
)
def test_error_directive_returns_dashscope_status_and_code(standin: StandIn, code: str, status: int) -> None:
    response = call(standin, f"please fail [[error:{code}]]", api_key=f"sk-error-{code}")

    assert response.status_code == status
    assert response.code == code
    assert response.message
    assert response.output is None
    assert standin.calls(f"sk-error-{code}")[-1]["outcome"] == "error"


def test_error_directive_fails_a_stream_before_any_output(standin: StandIn) -> None:
    responses = list(
        Generation.call(
            model=MODEL,
            messages=user("[[error:Throttling.RateQuota]]"),
            stream=True,
            incremental_output=True,
            result_format="message",
            base_address=standin.base_address,
            api_key="sk-test",
        )
    )

    assert len(responses) == 1
    assert responses[0].status_code == 429
    assert responses[0].code == "Throttling.RateQuota"


async def test_midstream_error_sends_pieces_then_one_error(standin: StandIn, aio_sdk: None) -> None:
    content = "tell me [[midstream_error:InternalError]]"
    responses = await stream(standin, content, api_key="sk-midstream", incremental_output=True)

    pieces, error = responses[:-1], responses[-1]
    assert pieces
    assert all(r.status_code == 200 and r.output.choices[0].finish_reason == "null" for r in pieces)
    partial = "".join(r.output.choices[0].message.content for r in pieces)
    assert ("Echo: " + content).startswith(partial)
    assert error.code == "InternalError"
    assert error.message
    assert error.output is None
    # The SDK reports 400 for any in-stream error frame without a `status:` line (wire doc §6.3).
    assert error.status_code == 400
    assert standin.calls("sk-midstream")[-1]["outcome"] == "error"


def test_midstream_error_without_stream_is_a_plain_error(standin: StandIn) -> None:
    response = call(standin, "[[midstream_error:ModelUnavailable]]")

    assert response.status_code == 503
    assert response.code == "ModelUnavailable"


def test_invalid_api_key_is_refused(standin: StandIn) -> None:
    response = call(standin, "hi", api_key="invalid-key")

    assert response.status_code == 401
    assert response.code == "InvalidApiKey"
    assert response.message == "Invalid API-key provided."
    assert standin.calls("invalid-key")[-1]["outcome"] == "error"


async def test_invalid_api_key_on_a_stream(standin: StandIn, aio_sdk: None) -> None:
    responses = await stream(standin, "hi", api_key="invalid-stream", incremental_output=True)

    assert [(r.status_code, r.code) for r in responses] == [(401, "InvalidApiKey")]


async def test_call_log_shows_what_was_received(standin: StandIn, aio_sdk: None) -> None:
    call(standin, "one", api_key="sk-log", temperature=0.3)
    await stream(
        standin, "two", api_key="sk-log", temperature=0.7, top_p=0.8, max_tokens=64, incremental_output=True
    )

    first, second = standin.calls("sk-log")
    assert first["stream"] is False
    assert first["parameters"] == {"temperature": 0.3, "result_format": "message"}
    assert second["stream"] is True
    assert second["parameters"] == {
        "temperature": 0.7,
        "top_p": 0.8,
        "max_tokens": 64,
        "incremental_output": True,
        "result_format": "message",
    }
    assert second["model"] == MODEL
    assert second["message_count"] == 1
    assert first["outcome"] == second["outcome"] == "completed"
    assert first["at"] <= second["at"]


def test_stall_without_stream_is_cancelled_when_the_sdk_times_out(standin: StandIn) -> None:
    with pytest.raises(requests.exceptions.RequestException):
        call(standin, "[[stall]]", api_key="sk-stall-sync", request_timeout=0.5)

    standin.wait_for_outcome("sk-stall-sync", "cancelled")


def test_close_shared_aio_session_exists() -> None:
    """The tests and the wrapper rely on it to close aiohttp cleanly."""
    assert callable(dashscope.close_shared_aio_session)
