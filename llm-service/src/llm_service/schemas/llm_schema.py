"""Request and response bodies of the chat API (seed §8, CONTRACT §2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, field_validator, model_validator
from shared.schemas import DecimalStr, UnicodeText

Role = Literal["system", "user", "assistant"]


class ChatMessage(BaseModel):
    """One message sent to the model, exactly as DashScope will receive it."""

    role: Role
    content: UnicodeText


class ChatRequest(BaseModel):
    """A chat call; parameters left null are not sent to DashScope at all."""

    model: str  # any string: a name no model has is a 400 (CONTRACT §2), found out by the service
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, lt=2, allow_inf_nan=False)
    top_p: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, ge=1)
    conversation_id: int | None = None

    @field_validator("temperature", "top_p", "max_tokens", "conversation_id", mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any) -> Any:
        # JSON `true` would otherwise pass as 1: a boolean is never a number here.
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return value

    @model_validator(mode="after")
    def _last_message_from_user(self) -> ChatRequest:
        if self.messages[-1].role != "user":
            raise ValueError("the last message must have role 'user'")
        return self

    @property
    def last_user_message(self) -> ChatMessage:
        return self.messages[-1]


class UsageInfo(BaseModel):
    """DashScope's token counts for one call."""

    input_tokens: int
    output_tokens: int
    total_tokens: int


class ChatResponse(BaseModel):
    """A whole (non-stream) reply."""

    content: str
    finish_reason: str | None
    usage: UsageInfo
    conversation_id: int


class StreamError(BaseModel):
    """Why a stream ended early: DashScope's own error code and message."""

    code: str
    message: str


class StreamChunk(BaseModel):
    """One SSE frame's JSON: a delta; the last one carries `finish_reason` and `usage`."""

    content: str
    finish_reason: str | None = None
    usage: UsageInfo | None = None
    error: StreamError | None = None

    def to_sse(self) -> bytes:
        """`data: <json>\\n\\n`; the `error` key appears on the error frame only."""
        payload = self.model_dump_json(exclude={"error"} if self.error is None else None)
        return f"data: {payload}\n\n".encode()


_JSON_STRING = TypeAdapter(str)
_DELTA_END = b',"finish_reason":null,"usage":null}\n\n'


def delta_frame(content: str) -> bytes:
    """The SSE frame of a plain delta, byte for byte `StreamChunk(content=content).to_sse()`.

    Most frames of a stream are these; building and dumping a model for each is the larger part of
    our own work per frame, so only the string is encoded (by pydantic, so the escaping is the same).
    """
    return b'data: {"content":' + _JSON_STRING.dump_json(content) + _DELTA_END


class PriceTierResponse(BaseModel):
    min_tokens: int
    max_tokens: int | None
    input_price: DecimalStr
    output_price: DecimalStr


class PricingResponse(BaseModel):
    """Prices in `currency` per 1,000 tokens; `tiers` (by min_tokens) apply when billing_mode is tier."""

    billing_mode: str
    currency: str
    input_price: DecimalStr | None
    output_price: DecimalStr | None
    tiers: list[PriceTierResponse]


class ModelResponse(BaseModel):
    """A chat model the caller may use, with its price (null when it has none)."""

    id: int
    name: str
    display_name: str | None
    category: int
    description: str | None
    pricing: PricingResponse | None
