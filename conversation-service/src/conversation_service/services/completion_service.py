"""Recording a finished reply (seed §2 "对话完成后自动保存") from its completion event."""

from __future__ import annotations

import logging
from enum import StrEnum

from shared.events import CompletionEvent
from sqlalchemy.ext.asyncio import AsyncSession

from conversation_service.repositories import message_repository, processed_event_repository
from conversation_service.services import conversation_service, message_service

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CONVERSATION_GONE = "conversation_gone"
    WRONG_OWNER = "wrong_owner"


async def apply_completion_event(session: AsyncSession, event: CompletionEvent) -> Outcome:
    """Store the event's messages and move the totals, at most once per `event_id`.

    Runs inside the caller's transaction: the processed-event row, the messages and the totals commit
    together, so a redelivered event finds its id and changes nothing.
    """
    if not await processed_event_repository.record(session, event_id=event.event_id):
        return Outcome.DUPLICATE
    conversation = await conversation_service.lock_conversation(
        session, conversation_id=event.conversation_id
    )
    if conversation is None:
        logger.info(
            "event for a deleted conversation dropped",
            extra={"event_id": str(event.event_id), "conversation_id": event.conversation_id},
        )
        return Outcome.CONVERSATION_GONE
    if conversation.user_id != event.user_id:
        # llm-service checked the owner before the call; an event that disagrees is not applied.
        logger.error(
            "event user does not own the conversation; dropped",
            extra={"event_id": str(event.event_id), "conversation_id": event.conversation_id},
        )
        return Outcome.WRONG_OWNER

    last_user = max((i for i, m in enumerate(event.messages_to_store) if m.role == "user"), default=-1)
    for index, stored in enumerate(event.messages_to_store):
        await message_service.create_message(
            session,
            conversation_id=conversation.id,
            role=stored.role,
            content=stored.content,
            input_tokens=event.usage.input_tokens if index == last_user else 0,
        )
    # The model may have been deleted since the call; the message keeps its name either way.
    model_id = await message_repository.existing_model_id(session, model_id=event.model_id)
    await message_service.create_message(
        session,
        conversation_id=conversation.id,
        role="assistant",
        content=event.assistant_content,
        output_tokens=event.usage.output_tokens,
        model_id=model_id,
        model_name=event.model_name,
    )
    return Outcome.APPLIED
