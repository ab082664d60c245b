"""ORM models of the tables every service reads (CONTRACT §5). Service-owned tables live in each service."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import CHAR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base

LLM_CATEGORY = 0


class User(Base):
    """A person who logs in; `apikey` is their DashScope key, encrypted."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    apikey: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Model(Base):
    """A DashScope model; `name` is the model code sent upstream, category 0 means LLM."""

    __tablename__ = "model"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    category: Mapped[int] = mapped_column(SmallInteger)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    price: Mapped[ModelPrice | None] = relationship(back_populates="model", lazy="raise", uselist=False)


class ModelPrice(Base):
    """How a model is billed: `simple` prices, or `tier` with rows in model_price_tier."""

    __tablename__ = "model_price"
    __table_args__ = (CheckConstraint("billing_mode IN ('simple', 'tier')", name="billing_mode"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("model.id", ondelete="CASCADE"), unique=True)
    billing_mode: Mapped[str] = mapped_column(String(16))
    input_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    output_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    currency: Mapped[str] = mapped_column(CHAR(3), server_default="CNY")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    model: Mapped[Model] = relationship(back_populates="price", lazy="raise")
    tiers: Mapped[list[ModelPriceTier]] = relationship(
        back_populates="price", lazy="raise", order_by="ModelPriceTier.min_tokens"
    )


class ModelPriceTier(Base):
    """One input-token range of a tiered price; `max_tokens` null means no upper bound."""

    __tablename__ = "model_price_tier"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    price_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("model_price.id", ondelete="CASCADE"), index=True
    )
    min_tokens: Mapped[int] = mapped_column(Integer)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    input_price: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    output_price: Mapped[Decimal] = mapped_column(Numeric(12, 6))

    price: Mapped[ModelPrice] = relationship(back_populates="tiers", lazy="raise")


class AIConversation(Base):
    """A conversation; `bill` is written by billing-service alone, the rest by conversation-service."""

    __tablename__ = "ai_conversation"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    total_input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    total_output_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    total_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    bill: Mapped[Decimal] = mapped_column(Numeric(12, 4), server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AIMessage(Base):
    """One stored message; a user message carries input tokens, an assistant message output tokens."""

    __tablename__ = "ai_message"
    __table_args__ = (CheckConstraint("role IN ('user', 'assistant', 'system')", name="role"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("ai_conversation.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    output_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    total_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    model_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("model.id", ondelete="SET NULL"))
    model_name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
