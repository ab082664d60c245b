"""The chat each benchmark sends, and how to send it on each path: straight to the stand-in in
DashScope's own protocol, straight to llm-service with an internal credential, or through the gateway."""

from __future__ import annotations

from dataclasses import dataclass

from shared.tokens import INTERNAL_TOKEN_HEADER, create_internal_token

from bench.load import Call
from bench.users import APIKEY, BenchUser
from harness import System

MODEL = "qwen-turbo"
STANDIN_PATH = "/api/v1/services/aigc/text-generation/generation"
PATHS = ("stand-in", "llm-service", "gateway")


def prompt(*, tokens: int, paced: bool) -> str:
    """A user message the stand-in answers with `tokens` characters, in pieces of 4 (20 pieces for 80),
    20 ms apart when paced."""
    return f"Benchmark chat. [[tokens:{tokens}]]" + (" [[delay_ms:20]]" if paced else "")


def _sse_ok(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}: {body[:120]!r}"
    if not body.endswith(b"data: [DONE]\n\n"):
        return "stream did not end with [DONE]"
    if b'"finish_reason": "error"' in body or b'"finish_reason":"error"' in body:
        return "stream ended with an error frame"
    return None


def _native_ok(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}: {body[:120]!r}"
    return None if b'"finish_reason":"stop"' in body else "no stop frame"


def json_ok(status: int, body: bytes) -> str | None:
    return None if status == 200 else f"HTTP {status}: {body[:120]!r}"


def native_call(base_url: str, content: str, *, stream: bool) -> Call:
    """The chat in DashScope's own protocol, as llm-service sends it, to the stand-in at `base_url` (or
    a proxy in front of it)."""
    headers = {"Authorization": f"Bearer {APIKEY}"}
    if stream:
        headers["X-DashScope-SSE"] = "enable"
    payload = {
        "model": MODEL,
        "input": {"messages": [{"role": "user", "content": content}]},
        "parameters": {"result_format": "message", "incremental_output": stream},
    }
    return Call.json(base_url + STANDIN_PATH, payload, headers, _native_ok)


@dataclass(frozen=True)
class Endpoints:
    """How to reach each path of a running system with the same chat."""

    system: System
    user: BenchUser

    def internal_headers(self) -> dict[str, str]:
        """The credential the gateway would send llm-service for this user (long-lived for the run)."""
        token = create_internal_token(
            secret=self.system.env["INTERNAL_SECRET"],
            user_id=self.user.id,
            audience="llm-service",
            caller="bench",
            ttl=3600,
        )
        return {INTERNAL_TOKEN_HEADER: token}

    def call(self, path: str, content: str, *, stream: bool, model: str = MODEL) -> Call:
        if path == "stand-in":
            return native_call(self.system.standin, content, stream=stream)
        body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}
        if path == "gateway":
            base, headers = self.system.gateway, self.user.headers
        else:
            base, headers = self.system.url("llm"), self.internal_headers()
        return Call.json(f"{base}/api/llm/chat", body, headers, _sse_ok if stream else json_ok)
