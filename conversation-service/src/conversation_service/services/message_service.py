"""Messages (seed §5): storing one moves its conversation's totals; reading checks the owner.

Costs are not computed here: billing-service prices every call from the same completion event and
owns `bill` (CONTRACT §3), so the seed's "call BillingCalculator" happens there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.db import storable_text
from shared.events import Role
from shared.models import AIMessage
from sqlalchemy.ext.asyncio import AsyncSession

from conversation_service.repositories import message_repository
from conversation_service.services import conversation_service


@dataclass(frozen=True)
class NewMessage:
    """A message to store with `create_messages`; the token rules of `_storable` apply."""

    conversation_id: int
    role: Role
    content: str
    input_tokens: int = 0
    output_tokens: int = 0
    model_id: int | None = None
    model_name: str | None = None


def _storable(role: Role, content: str, input_tokens: int, output_tokens: int) -> tuple[str, int, int]:
    """The one place of the token rules: a user message records only input tokens, an assistant message
    only output tokens, a system message none. The content as PostgreSQL can store it (`storable_text`)."""
    content = storable_text(content)
    if role != "user":
        input_tokens = 0
    if role != "assistant":
        output_tokens = 0
    return content, input_tokens, output_tokens


async def create_messages(session: AsyncSession, messages: Sequence[NewMessage]) -> None:
    """The seed's `create_message`, for many messages at once: one INSERT for all of them (in the given
    order) and one update of each conversation's totals by the sum of its messages' tokens."""
    rows: list[dict[str, Any]] = []
    deltas: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
    for message in messages:
        content, input_tokens, output_tokens = _storable(
            message.role, message.content, message.input_tokens, message.output_tokens
        )
        rows.append(
            {
                "conversation_id": message.conversation_id,
                "role": message.role,
                "content": content,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "model_id": message.model_id,
                "model_name": message.model_name,
            }
        )
        delta = deltas[message.conversation_id]
        delta[0] += input_tokens
        delta[1] += output_tokens
    if not rows:
        return
    await message_repository.insert_messages(session, rows)
    await conversation_service.update_token_stats_many(
        session, deltas={cid: (d[0], d[1]) for cid, d in deltas.items()}
    )


async def get_conversation_messages(
    session: AsyncSession, *, conversation_id: int, user_id: int
) -> Sequence[AIMessage]:
    """The messages of the caller's conversation in written order; not found if it is not theirs."""
    await conversation_service.get_conversation(session, conversation_id=conversation_id, user_id=user_id)
    return await message_repository.list_for_conversation(session, conversation_id=conversation_id)
