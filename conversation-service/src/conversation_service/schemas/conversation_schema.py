"""Request and response bodies of the conversation routes (seed §8, CONTRACT §2)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from shared.schemas import Money, Timestamp, UnicodeText


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here (422) rather than fail in the database (500).
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Title = Annotated[UnicodeText, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]


class ConversationCreate(BaseModel):
    """`title` may be left out (or null): the conversation is then called "New chat"."""

    title: Title | None = None


class ConversationUpdate(BaseModel):
    title: Title


class ConversationResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    title: str
    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    bill: Money
    created_at: Timestamp
    updated_at: Timestamp


class MessageResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: int
    role: str
    content: str
    input_tokens: int
    output_tokens: int
    total_tokens: int
    model_id: int | None
    model_name: str | None
    created_at: Timestamp


class ConversationDetailResponse(ConversationResponse):
    """The conversation and its messages in the order they were written."""

    messages: list[MessageResponse]
