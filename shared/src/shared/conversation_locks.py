"""The lock both consumers take on the conversations a batch of replies touches.

conversation-service moves a conversation's token totals and billing-service its bill; each first
locks the conversation rows of the batch, so its writes and the read that follows (the bill recomputed
from the ledger) see every line committed before: two consumers of one group cannot lose an update.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import AIConversation


async def lock_conversations(session: AsyncSession, conversation_ids: Iterable[int]) -> dict[int, int]:
    """Lock the existing ones of these conversations for this transaction (FOR NO KEY UPDATE: messages
    may still be inserted under them), in id order so that concurrent batches cannot deadlock; their
    owners by id (a deleted conversation is absent)."""
    statement = (
        select(AIConversation.id, AIConversation.user_id)
        .where(AIConversation.id.in_(sorted(set(conversation_ids))))
        .order_by(AIConversation.id)
        .with_for_update(key_share=True)
    )
    return {row.id: row.user_id for row in await session.execute(statement)}
