"""Request and response bodies of the conversation routes (seed §8, CONTRACT §2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from shared.models import AIConversation, AIMessage
from shared.schemas import Money, Timestamp, check_storable

Title = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_storable)]


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

    @classmethod
    def of(cls, conversation: AIConversation, messages: Sequence[AIMessage]) -> ConversationDetailResponse:
        """From the conversation's row and its message rows (read apart: the model has no relationship)."""
        summary = ConversationResponse.model_validate(conversation).model_dump()
        return cls(**summary, messages=[MessageResponse.model_validate(message) for message in messages])
