"""Pure parts of the stand-in, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashscope_standin.calls import CallLog
from dashscope_standin.directives import Directives, filler, parse_directives
from dashscope_standin.plan import BadRequest, make_plan
from dashscope_standin.protocol import error_for
from dashscope_standin.settings import Settings


def test_directives_are_found_anywhere_and_the_first_of_each_wins() -> None:
    text = (
        "a [[tokens:5]] b [[error:InternalError]] [[tokens:9]] [[stall]] [[delay_ms:20]] [[input_tokens:7]]"
    )

    assert parse_directives(text) == Directives(
        tokens=5, input_tokens=7, delay_ms=20, error="InternalError", stall=True
    )


def test_malformed_directives_are_plain_text() -> None:
    assert parse_directives("[[tokens:abc]] [[tokens]] [[error:]] [[unknown:1]] [tokens:3]") == Directives()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InvalidParameter", 400),
        ("InvalidApiKey", 401),
        ("Model.AccessDenied", 403),
        ("RequestTimeOut", 408),
        ("Throttling.AllocationQuota", 429),
        ("SystemError", 500),
        ("InternalError.Algo", 500),
        ("ModelUnavailable", 503),
        ("NoSuchCode", 400),
    ],
)
def test_an_injected_error_has_dashscopes_own_status(code: str, status: int) -> None:
    """As in DashScope's error-code table, so a 5xx code is not sent as a 400 (unknown codes are 400s)."""
    assert error_for(code)[0] == status


@pytest.mark.parametrize("length", [0, 1, 50, 117, 1000])
def test_filler_has_exactly_the_requested_length(length: int) -> None:
    assert len(filler(length)) == length
    assert filler(length) == filler(1000)[:length]


def test_call_log_keeps_the_newest_thousand() -> None:
    log = CallLog()
    for i in range(1005):
        log.record(model=f"m{i}", api_key="k", parameters={}, message_count=1, stream=False)

    calls = log.snapshot()
    assert len(calls) == 1000
    assert calls[0]["model"] == "m5"
    assert calls[-1]["model"] == "m1004"


def test_outcome_is_cancelled_when_work_ends_without_one_and_error_on_a_crash() -> None:
    log = CallLog()
    left = log.record(model="m", api_key="k", parameters={}, message_count=1, stream=True)
    crashed = log.record(model="m", api_key="k", parameters={}, message_count=1, stream=True)
    done = log.record(model="m", api_key="k", parameters={}, message_count=1, stream=True)

    with left.settling():
        pass
    with pytest.raises(RuntimeError), crashed.settling():
        raise RuntimeError("boom")
    with done.settling():
        done.finish("completed")

    assert [call["outcome"] for call in log.snapshot()] == ["cancelled", "error", "completed"]


def test_plan_counts_a_prompt_as_the_last_user_message() -> None:
    plan = make_plan(
        {
            "model": "m",
            "input": {"messages": [{"role": "system", "content": "sys"}], "prompt": "hey"},
            "parameters": {"max_tokens": 4},
        },
        Settings(),
    )

    assert (plan.reply, plan.finish_reason, plan.input_tokens) == ("Echo", "length", 6)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([], "InvalidParameter"),
        ({"input": {"prompt": "x"}}, "BadRequest.EmptyModel"),
        ({"model": "m"}, "BadRequest.EmptyInput"),
        ({"model": "m", "input": {}}, "InvalidParameter"),
        ({"model": "m", "input": {"messages": "hi"}}, "InvalidParameter"),
        ({"model": "m", "input": {"prompt": "x"}, "parameters": {"max_tokens": 0}}, "InvalidParameter"),
    ],
)
def test_requests_dashscope_would_refuse(body: object, code: str) -> None:
    with pytest.raises(BadRequest) as refused:
        make_plan(body, Settings())
    assert refused.value.code == code


def test_settings_take_defaults_from_dotenv_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("STANDIN_PORT=18777\nSTANDIN_CHUNK_CHARS=2\nSTANDIN_CHUNK_DELAY_MS=5\n")
    monkeypatch.chdir(tmp_path)
    for name in ("STANDIN_HOST", "STANDIN_PORT", "STANDIN_CHUNK_CHARS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STANDIN_CHUNK_DELAY_MS", "7")

    assert Settings.from_env() == Settings(host="127.0.0.1", port=18777, chunk_chars=2, chunk_delay_ms=7)
