"""Bytes on the wire in DashScope's native format (wire doc §4, §5.2, §6).

Frames are built from strings prepared once per call, so each streamed piece costs one small
`json.dumps` of its text and one f-string: the stand-in must pace a thousand streams on two cores.
"""

from __future__ import annotations

import json
from typing import Any

SSE_CONTENT_TYPE = "text/event-stream;charset=UTF-8"
JSON_CONTENT_TYPE = "application/json"

# DashScope's HTTP status and typical message for its error codes (wire doc §6.1, the official table),
# so a code injected by a directive comes with the status DashScope itself would send.
_INTERNAL = "An internal error has occured, please try again later or contact service support."
_ACCESS_DENIED = "Access denied."
ERRORS: dict[str, tuple[int, str]] = {
    "InvalidParameter": (
        400,
        "Required parameter(s) missing or invalid, please check the request parameters.",
    ),
    "DataInspectionFailed": (400, "Input or output data may contain inappropriate content."),
    "BadRequest.EmptyInput": (400, "Required input parameter missing from request."),
    "BadRequest.EmptyParameters": (400, 'Required parameter "parameters" missing from request.'),
    "BadRequest.EmptyModel": (400, 'Required parameter "model" missing from request.'),
    "InvalidURL": (400, "Invalid URL provided in your request."),
    "Arrearage": (400, "Access denied, please make sure your account is in good standing."),
    "InvalidApiKey": (401, "Invalid API-key provided."),
    "AccessDenied": (403, _ACCESS_DENIED),
    "Workspace.AccessDenied": (403, _ACCESS_DENIED),
    "Model.AccessDenied": (403, "Model access denied."),
    "AccessDenied.Unpurchased": (403, _ACCESS_DENIED),
    "ModelNotFound": (404, "Model can not be found."),
    "WorkSpaceNotFound": (404, "WorkSpace can not be found."),
    "RequestTimeOut": (408, "Request timed out, please try again later."),
    "BadRequest.TooLarge": (413, "Payload Too Large."),
    "Throttling": (429, "Requests throttling triggered."),
    "Throttling.RateQuota": (429, "Requests rate limit exceeded, please try again later."),
    "Throttling.AllocationQuota": (429, "Allocated quota exceeded, please increase your quota limit."),
    "InternalError": (500, _INTERNAL),
    "InternalError.Algo": (500, _INTERNAL),
    "InternalError.Timeout": (500, _INTERNAL),
    "SystemError": (500, _INTERNAL),
    "ModelUnavailable": (503, "Model is unavailable, please try again later."),
}
UNKNOWN_ERROR_STATUS = 400


def dumps(value: Any) -> str:
    """Compact one-line JSON, UTF-8 text kept as is (as DashScope sends it)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def error_for(code: str) -> tuple[int, str]:
    """Status and message for an error code; an unknown code is a 400 that names itself."""
    return ERRORS.get(code, (UNKNOWN_ERROR_STATUS, f"Injected error {code}."))


def error_body(code: str, message: str, request_id: str) -> bytes:
    """The JSON body of an error response."""
    return dumps({"code": code, "message": message, "request_id": request_id}).encode()


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def result_body(
    *, text: str, finish_reason: str, message_format: bool, input_tokens: int, request_id: str
) -> bytes:
    """The body of a non-stream 200: always `output`, full `usage` and `request_id` (wire doc §4)."""
    output: dict[str, Any]
    if message_format:
        output = {
            "choices": [{"finish_reason": finish_reason, "message": {"role": "assistant", "content": text}}]
        }
    else:
        output = {"text": text, "finish_reason": finish_reason}
    body = {"output": output, "usage": _usage(input_tokens, len(text)), "request_id": request_id}
    return dumps(body).encode()


# Templates for streamed frames; `%(content)s` and `%(finish)s` are JSON strings.
_MESSAGE_OUTPUT = (
    '{"choices":[{"finish_reason":%(finish)s,"message":{"role":"assistant","content":%(content)s}}]}'
)
_TEXT_OUTPUT = '{"text":%(content)s,"finish_reason":%(finish)s}'
_RESULT_FRAME = (
    "id:%d\nevent:result\n:HTTP_STATUS/200\n"
    'data:{"output":%s,"usage":{"input_tokens":%d,"output_tokens":%d,"total_tokens":%d},"request_id":"%s"}\n\n'
)
_NOT_FINISHED = dumps("null")


class FrameBuilder:
    """Builds the SSE frames of one stream (wire doc §5.2)."""

    __slots__ = ("_input", "_output", "_request_id")

    def __init__(self, *, message_format: bool, input_tokens: int, request_id: str) -> None:
        self._output = _MESSAGE_OUTPUT if message_format else _TEXT_OUTPUT
        self._input = input_tokens
        self._request_id = request_id

    def result(
        self, event_id: int, content: str, output_tokens: int, finish_reason: str | None = None
    ) -> bytes:
        """One `event:result` frame; without `finish_reason` it carries the string "null" (not finished)."""
        finish = _NOT_FINISHED if finish_reason is None else dumps(finish_reason)
        output = self._output % {"content": dumps(content), "finish": finish}
        frame = _RESULT_FRAME % (
            event_id,
            output,
            self._input,
            output_tokens,
            self._input + output_tokens,
            self._request_id,
        )
        return frame.encode()

    def error(self, event_id: int, code: str) -> bytes:
        """The `event:error` frame that ends a stream which had already started (wire doc §6.4)."""
        status, message = error_for(code)
        data = dumps({"code": code, "message": message, "request_id": self._request_id})
        return f"id:{event_id}\nevent:error\n:HTTP_STATUS/{status}\ndata:{data}\n\n".encode()
