"""ORM models of the tables conversation-service owns (ai_conversation and ai_message are in shared)."""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.db import Base
from sqlalchemy import DateTime, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column


class ConversationProcessedEvent(Base):
    """A completion event already applied: the consumer's idempotency record, written with the messages."""

    __tablename__ = "conversation_processed_event"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
