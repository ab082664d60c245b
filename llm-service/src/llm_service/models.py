"""ORM models of the tables llm-service owns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.db import Base
from sqlalchemy import BigInteger, DateTime, Integer, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column


class OutboxEntry(Base):
    """One completion event Redis could not take when its reply ended; `published_at` is null until the
    relay has put it on the stream. With `lease_until` set, the event of a stream still running, as it
    stands (see `llm_service.outbox`): the relay leaves it alone until the lease expires."""

    __tablename__ = "llm_outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
