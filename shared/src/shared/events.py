"""The completion event (CONTRACT §4): published once per reply by llm-service, consumed by
conversation-service and billing-service."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

COMPLETION_STREAM = "aigcspace:chat.completed"
DEAD_LETTER_STREAM = "aigcspace:chat.completed.dead"
CONVERSATION_GROUP = "conversation-service"
BILLING_GROUP = "billing-service"
EVENT_FIELD = "event"
STREAM_MAX_LEN = 100_000

Role = Literal["system", "user", "assistant"]
CompletionStatus = Literal["completed", "interrupted", "failed"]


class StoredMessage(BaseModel):
    """A message the request brought that is to be stored with the reply."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


class Usage(BaseModel):
    """DashScope's token counts for one call."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class CompletionEvent(BaseModel):
    """One reply that produced output; `event_id` is the idempotency key of every consumer."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    user_id: int
    conversation_id: int
    model_id: int
    model_name: str
    request_id: str
    messages_to_store: list[StoredMessage]
    assistant_content: str
    finish_reason: str | None
    status: CompletionStatus
    usage: Usage

    def to_stream_fields(self) -> dict[str, str]:
        """The Redis stream entry: one field, `event`, holding the JSON."""
        return {EVENT_FIELD: self.model_dump_json()}

    @classmethod
    def from_stream_fields(cls, fields: dict[str, str]) -> CompletionEvent:
        return cls.model_validate_json(fields[EVENT_FIELD])


def first_of_each(events: Iterable[CompletionEvent]) -> dict[uuid.UUID, CompletionEvent]:
    """The events by id, in order, each id once (a batch may hold an event published twice)."""
    unique: dict[uuid.UUID, CompletionEvent] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    return unique
