"""Exact bytes, pacing and disconnects, checked with a plain HTTP client."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import httpx
import pytest
from standin_server import StandIn

SSE = {"X-DashScope-SSE": "enable", "Accept": "text/event-stream"}


def body(content: str, **parameters: Any) -> dict[str, Any]:
    return {
        "model": "qwen-plus",
        "input": {"messages": [{"role": "user", "content": content}]},
        "parameters": parameters,
    }


def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def test_health_endpoints(standin: StandIn) -> None:
    for path in ("/healthz", "/readyz"):
        response = httpx.get(standin.url + path)
        assert response.status_code == 200
        assert response.json() == {"code": 200, "message": "success", "data": {"status": "ok"}}


def test_stream_bytes_match_the_wire_format(standin: StandIn) -> None:
    response = httpx.post(
        standin.generation_url,
        json=body("hi", result_format="message", incremental_output=True),
        headers={**SSE, **auth("sk-test")},
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream;charset=UTF-8"
    assert response.headers["transfer-encoding"] == "chunked"
    rid = response.headers["x-request-id"]
    usage = '"usage":{"input_tokens":2,"output_tokens":%d,"total_tokens":%d}'
    frame = (
        "id:%d\nevent:result\n:HTTP_STATUS/200\n"
        'data:{"output":{"choices":[{"finish_reason":"%s","message":{"role":"assistant","content":"%s"}}]},'
        + usage
        + ',"request_id":"%s"}\n\n'
    )
    assert response.text == (
        frame % (1, "null", "Echo", 4, 6, rid)
        + frame % (2, "null", ": hi", 8, 10, rid)
        + frame % (3, "stop", "", 8, 10, rid)
    )


def test_text_format_stream_frames_are_one_line_json(standin: StandIn) -> None:
    response = httpx.post(
        standin.generation_url, json=body('say "ok" 好'), headers={**SSE, **auth("sk-test")}
    )

    lines = [line for line in response.text.split("\n") if line.startswith("data:")]
    data = [json.loads(line.removeprefix("data:")) for line in lines]
    assert [d["output"]["text"] for d in data][-1] == 'Echo: say "ok" 好'
    assert [d["output"]["finish_reason"] for d in data] == ["null"] * (len(data) - 1) + ["stop"]
    assert '好"' in response.text  # sent as UTF-8, not as a \\u escape


def test_midstream_error_frame_bytes(standin: StandIn) -> None:
    response = httpx.post(
        standin.generation_url,
        json=body("[[midstream_error:Throttling.RateQuota]]", incremental_output=True),
        headers={**SSE, **auth("sk-test")},
    )

    events = response.text.split("\n\n")
    assert events[-1] == ""
    last = events[-2].split("\n")
    assert last[1:3] == ["event:error", ":HTTP_STATUS/429"]
    assert last[0] == f"id:{len(events) - 1}"
    assert json.loads(last[3].removeprefix("data:")) == {
        "code": "Throttling.RateQuota",
        "message": "Requests rate limit exceeded, please try again later.",
        "request_id": response.headers["x-request-id"],
    }


def test_missing_key_is_401_with_request_id(standin: StandIn) -> None:
    response = httpx.post(standin.generation_url, json=body("hi"))

    assert response.status_code == 401
    assert response.json() == {
        "code": "InvalidApiKey",
        "message": "Invalid API-key provided.",
        "request_id": response.headers["x-request-id"],
    }


def test_request_without_messages_is_invalid_parameter(standin: StandIn) -> None:
    response = httpx.post(
        standin.generation_url, json={"model": "qwen-plus", "input": {}}, headers=auth("sk-test")
    )

    assert response.status_code == 400
    assert response.json()["code"] == "InvalidParameter"


@pytest.mark.parametrize("sse", [False, True], ids=["json", "stream"])
def test_a_lone_surrogate_is_invalid_parameter(standin: StandIn, sse: bool) -> None:
    """Valid JSON but not text (it was an unhandled 500 in plain text)."""
    raw = json.dumps(body("a\ud800b")).encode()  # ensure_ascii: spelled as the escape \\ud800
    headers = {**auth("sk-test"), "Content-Type": "application/json", **(SSE if sse else {})}
    response = httpx.post(standin.generation_url, content=raw, headers=headers)

    assert response.status_code == 400
    assert response.json()["code"] == "InvalidParameter"


def test_frames_are_paced_not_batched(standin: StandIn) -> None:
    # "Echo: [[delay_ms:100]] go" is 25 characters: 7 pieces, each sent 100 ms after the previous one.
    arrivals: list[float] = []
    start = time.monotonic()
    with httpx.stream(
        "POST",
        standin.generation_url,
        json=body("[[delay_ms:100]] go", incremental_output=True),
        headers={**SSE, **auth("sk-test")},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic() - start)

    assert len(arrivals) == 8
    assert 0.05 < arrivals[0] < 0.5
    assert arrivals[-1] - arrivals[0] > 0.45  # six more pieces at 100 ms each
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals[:7])]
    assert min(gaps) > 0.05
    assert arrivals[-1] < 3


def test_non_stream_reply_takes_as_long_as_the_stream_would(standin: StandIn) -> None:
    # "Echo: [[delay_ms:60]] x" is 23 characters: 6 pieces of 60 ms.
    start = time.monotonic()
    response = httpx.post(standin.generation_url, json=body("[[delay_ms:60]] x"), headers=auth("sk-test"))
    elapsed = time.monotonic() - start

    assert response.json()["output"]["text"] == "Echo: [[delay_ms:60]] x"
    assert 0.3 < elapsed < 3


def test_stalled_stream_is_cancelled_when_the_client_leaves(standin: StandIn) -> None:
    with httpx.stream(
        "POST",
        standin.generation_url,
        json=body("[[stall]] and more text", incremental_output=True),
        headers={**SSE, **auth("sk-stall-stream")},
        timeout=5,
    ) as response:
        # Keep the line iterator referenced: dropping it closes the connection (httpcore does that).
        lines = response.iter_lines()
        frames: list[str] = []
        for line in lines:
            if line.startswith("data:"):
                frames.append(line)
                if len(frames) == 2:
                    break
        time.sleep(0.3)
        assert standin.calls("sk-stall-stream")[-1]["outcome"] == "pending"

    assert len(frames) == 2
    assert all('"finish_reason":"null"' in frame for frame in frames)
    standin.wait_for_outcome("sk-stall-stream", "cancelled")


def test_stall_sends_exactly_two_pieces(standin: StandIn) -> None:
    lines: list[str] = []
    try:
        with httpx.stream(
            "POST",
            standin.generation_url,
            json=body("[[stall]]", incremental_output=True),
            headers={**SSE, **auth("sk-stall-two")},
            timeout=httpx.Timeout(5, read=0.5),
        ) as response:
            lines.extend(line for line in response.iter_lines() if line.startswith("data:"))
    except httpx.ReadTimeout:
        pass

    assert len(lines) == 2
    standin.wait_for_outcome("sk-stall-two", "cancelled")


def test_client_leaving_a_paced_stream_is_cancelled(standin: StandIn) -> None:
    with httpx.stream(
        "POST",
        standin.generation_url,
        json=body("[[delay_ms:50]] a reply that takes a while to stream", incremental_output=True),
        headers={**SSE, **auth("sk-leave")},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                break

    standin.wait_for_outcome("sk-leave", "cancelled")


def test_delete_clears_the_call_log(standin: StandIn) -> None:
    httpx.post(standin.generation_url, json=body("hi"), headers=auth("sk-delete"))
    assert standin.calls("sk-delete")

    response = httpx.delete(f"{standin.url}/_standin/calls")

    assert response.status_code == 200
    assert httpx.get(f"{standin.url}/_standin/calls").json() == []
