"""Conversations (seed §4): create, read, list, rename, delete, and the token totals.

Every function that acts for a user checks ownership: someone else's conversation is "not found",
exactly like a missing one. The caller's transaction (request session or unit of work) commits.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.db import read_from_one_snapshot
from shared.errors import NotFound
from shared.models import AIConversation, AIMessage
from sqlalchemy.ext.asyncio import AsyncSession

from conversation_service.repositories import conversation_repository, message_repository

DEFAULT_TITLE = "New chat"
NOT_FOUND_MESSAGE = "Conversation not found."
_MAX_ID = 2**63 - 1  # ids are BIGINT; anything beyond cannot exist


class ConversationNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__(NOT_FOUND_MESSAGE)


def _check_id(conversation_id: int) -> None:
    if not 1 <= conversation_id <= _MAX_ID:
        raise ConversationNotFound()


async def create_conversation(session: AsyncSession, *, user_id: int, title: str | None) -> AIConversation:
    """A new, empty conversation of `user_id`."""
    return await conversation_repository.insert_conversation(
        session, user_id=user_id, title=title or DEFAULT_TITLE
    )


async def get_conversation(session: AsyncSession, *, conversation_id: int, user_id: int) -> AIConversation:
    """The caller's conversation; `ConversationNotFound` when it is missing or someone else's."""
    _check_id(conversation_id)
    conversation = await conversation_repository.get_owned(
        session, conversation_id=conversation_id, user_id=user_id
    )
    if conversation is None:
        raise ConversationNotFound()
    return conversation


async def get_user_conversations(
    session: AsyncSession, *, user_id: int, limit: int, offset: int
) -> tuple[Sequence[AIConversation], int]:
    """One page of the caller's conversations, newest `updated_at` first, and how many there are."""
    await read_from_one_snapshot(session)
    conversations = await conversation_repository.list_owned(
        session, user_id=user_id, limit=limit, offset=offset
    )
    total = await conversation_repository.count_owned(session, user_id=user_id)
    return conversations, total


async def get_conversation_detail(
    session: AsyncSession, *, conversation_id: int, user_id: int
) -> tuple[AIConversation, Sequence[AIMessage]]:
    """The caller's conversation and its messages in written order, as of one moment."""
    await read_from_one_snapshot(session)
    conversation = await get_conversation(session, conversation_id=conversation_id, user_id=user_id)
    messages = await message_repository.list_for_conversation(session, conversation_id=conversation_id)
    return conversation, messages


async def update_title(
    session: AsyncSession, *, conversation_id: int, user_id: int, title: str
) -> AIConversation:
    """Rename the caller's conversation."""
    _check_id(conversation_id)
    conversation = await conversation_repository.update_title(
        session, conversation_id=conversation_id, user_id=user_id, title=title
    )
    if conversation is None:
        raise ConversationNotFound()
    return conversation


async def delete_conversation(session: AsyncSession, *, conversation_id: int, user_id: int) -> None:
    """Delete the caller's conversation and (by cascade) its messages."""
    _check_id(conversation_id)
    if not await conversation_repository.delete_owned(
        session, conversation_id=conversation_id, user_id=user_id
    ):
        raise ConversationNotFound()


async def update_token_stats_many(session: AsyncSession, *, deltas: dict[int, tuple[int, int]]) -> None:
    """The seed's `update_token_stats`, for several conversations at once: (input, output) tokens to add
    to each conversation's totals, by conversation id (accumulated in SQL, never overwritten)."""
    await conversation_repository.add_tokens_many(session, deltas=deltas)


# The seed's `update_bill` is deliberately absent: `bill` is written by billing-service alone (CONTRACT §3).
