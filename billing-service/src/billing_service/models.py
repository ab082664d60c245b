"""ORM models of the tables billing-service owns."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from shared.db import Base
from sqlalchemy import BigInteger, DateTime, Integer, Numeric, String, func
from sqlalchemy.dialects.postgresql import CHAR, UUID
from sqlalchemy.orm import Mapped, mapped_column


class BillingLedger(Base):
    """One billed call with its exact cost and the unit prices used; `event_id` is unique (billed once).

    No foreign key to the conversation: money records outlive a deleted conversation.
    """

    __tablename__ = "billing_ledger"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    conversation_id: Mapped[int] = mapped_column(BigInteger, index=True)
    model_id: Mapped[int | None] = mapped_column(BigInteger)
    model_name: Mapped[str] = mapped_column(String(128))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    billing_mode: Mapped[str | None] = mapped_column(String(16))
    input_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    output_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    cost: Mapped[Decimal] = mapped_column(Numeric(30, 12))
    currency: Mapped[str] = mapped_column(CHAR(3), server_default="CNY")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
