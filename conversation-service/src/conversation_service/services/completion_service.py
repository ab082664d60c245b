"""Recording a finished reply (seed §2 "对话完成后自动保存") from its completion event."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from enum import StrEnum

from shared.conversation_locks import lock_conversations
from shared.events import CompletionEvent, first_of_each
from sqlalchemy.ext.asyncio import AsyncSession

from conversation_service.repositories import message_repository, processed_event_repository
from conversation_service.services import message_service
from conversation_service.services.message_service import NewMessage

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CONVERSATION_GONE = "conversation_gone"
    WRONG_OWNER = "wrong_owner"


def _last_user_index(event: CompletionEvent) -> int:
    """The user message that carries the call's input tokens: the last one the request brought."""
    return max((i for i, m in enumerate(event.messages_to_store) if m.role == "user"), default=-1)


async def apply_completion_events(
    session: AsyncSession, events: Sequence[CompletionEvent]
) -> dict[uuid.UUID, Outcome]:
    """Store each event's messages and move the totals, at most once per `event_id`; the outcome of each.

    Runs inside the caller's transaction: the processed-event rows, the messages and the totals commit
    together, so a redelivered event finds its id and changes nothing. A handful of statements whatever
    the batch: the ids claimed with one INSERT, the conversations locked in id order, every applied
    event's messages inserted with one statement (in event order, each event's in its own order), each
    conversation's totals moved once.
    """
    unique = first_of_each(events)
    outcomes = dict.fromkeys(unique, Outcome.DUPLICATE)
    new_ids = await processed_event_repository.record_many(session, event_ids=list(unique))
    fresh = [event for event_id, event in unique.items() if event_id in new_ids]
    if not fresh:
        return outcomes
    owners = await lock_conversations(session, (event.conversation_id for event in fresh))
    models = await message_repository.existing_model_ids(
        session, model_ids=(event.model_id for event in fresh)
    )
    messages: list[NewMessage] = []
    for event in fresh:
        owner = owners.get(event.conversation_id)
        if owner is None:
            logger.info(
                "event for a deleted conversation dropped",
                extra={"event_id": str(event.event_id), "conversation_id": event.conversation_id},
            )
            outcomes[event.event_id] = Outcome.CONVERSATION_GONE
            continue
        if owner != event.user_id:
            logger.error(
                "event user does not own the conversation; dropped",
                extra={"event_id": str(event.event_id), "conversation_id": event.conversation_id},
            )
            outcomes[event.event_id] = Outcome.WRONG_OWNER
            continue
        last_user = _last_user_index(event)
        messages.extend(
            NewMessage(
                conversation_id=event.conversation_id,
                role=stored.role,
                content=stored.content,
                input_tokens=event.usage.input_tokens if index == last_user else 0,
            )
            for index, stored in enumerate(event.messages_to_store)
        )
        messages.append(
            NewMessage(
                conversation_id=event.conversation_id,
                role="assistant",
                content=event.assistant_content,
                output_tokens=event.usage.output_tokens,
                model_id=event.model_id if event.model_id in models else None,
                model_name=event.model_name,
            )
        )
        outcomes[event.event_id] = Outcome.APPLIED
    await message_service.create_messages(session, messages)
    return outcomes
