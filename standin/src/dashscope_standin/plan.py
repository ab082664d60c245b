"""From a generation request to the deterministic reply the stand-in will give (CONTRACT §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashscope_standin.directives import Directives, filler, parse_directives
from dashscope_standin.settings import Settings

ECHO_PREFIX = "Echo: "


class BadRequest(Exception):
    """A request DashScope itself would refuse with HTTP 400."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything needed to answer one call, decided before the first byte goes out."""

    reply: str  # already cut by max_tokens
    finish_reason: str  # "stop" or "length"
    input_tokens: int
    delay_s: float  # wait before each streamed piece
    message_format: bool  # result_format "message" (else "text")
    incremental: bool  # incremental_output (else cumulative)
    directives: Directives


def _text(content: Any) -> str:
    """The text of a message's content: a string, or the `text` parts of a multimodal list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part["text"]) for part in content if isinstance(part, dict) and "text" in part)
    return "" if content is None else str(content)


def _messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of every input message; a `prompt` counts as a trailing user message."""
    payload = body.get("input")
    if not isinstance(payload, dict):
        raise BadRequest("BadRequest.EmptyInput", "Required input missing from request.")
    messages = payload.get("messages")
    prompt = payload.get("prompt")
    if messages is None and prompt is None:
        raise BadRequest(
            "InvalidParameter", 'Either "prompt" or "messages" must exist and cannot both be none'
        )
    if messages is not None and (
        not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages)
    ):
        raise BadRequest("InvalidParameter", '"messages" must be a list of message objects.')
    result = [(str(m.get("role", "")), _text(m.get("content"))) for m in messages or []]
    if prompt is not None:
        result.append(("user", _text(prompt)))
    return result


def message_count(body: Any) -> int:
    """How many messages a request carries, without validating it (for the call log)."""
    payload = body.get("input") if isinstance(body, dict) else None
    if not isinstance(payload, dict):
        return 0
    messages = payload.get("messages")
    count = len(messages) if isinstance(messages, list) else 0
    return count + (1 if payload.get("prompt") is not None else 0)


def _max_tokens(parameters: dict[str, Any]) -> int | None:
    value = parameters.get("max_tokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest("InvalidParameter", "Range of max_tokens should be [1, 2147483647]")
    return value


def make_plan(body: Any, settings: Settings) -> Plan:
    """Decide reply, tokens and pacing for a request body, or raise `BadRequest`."""
    if not isinstance(body, dict):
        raise BadRequest("InvalidParameter", "Request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("BadRequest.EmptyModel", 'Required parameter "model" missing from request.')
    parameters = body.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise BadRequest("BadRequest.EmptyParameters", '"parameters" must be an object.')
    messages = _messages(body)
    max_tokens = _max_tokens(parameters)

    last_user = next((text for role, text in reversed(messages) if role == "user"), "")
    directives = parse_directives(last_user)
    reply = filler(directives.tokens) if directives.tokens is not None else ECHO_PREFIX + last_user
    finish_reason = "stop"
    if max_tokens is not None and len(reply) > max_tokens:
        reply, finish_reason = reply[:max_tokens], "length"

    input_tokens = directives.input_tokens
    if input_tokens is None:
        input_tokens = sum(len(text) for _, text in messages)
    delay_ms = directives.delay_ms if directives.delay_ms is not None else settings.chunk_delay_ms
    return Plan(
        reply=reply,
        finish_reason=finish_reason,
        input_tokens=input_tokens,
        delay_s=delay_ms / 1000,
        message_format=parameters.get("result_format") == "message",
        incremental=parameters.get("incremental_output") is True,
        directives=directives,
    )
