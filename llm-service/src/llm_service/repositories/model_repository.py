"""Reads of the model and price tables (owned by operators and the demo data)."""

from __future__ import annotations

from shared.models import LLM_CATEGORY, Model, ModelPrice
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload


async def get_model_by_name(session: AsyncSession, name: str) -> Model | None:
    """The model whose DashScope code is `name`, active or not."""
    return await session.scalar(select(Model).where(Model.name == name))


async def list_chat_models(session: AsyncSession) -> list[Model]:
    """Active LLMs (category 0) by id, each with its price and tiers loaded."""
    query = (
        select(Model)
        .where(Model.is_active.is_(True), Model.category == LLM_CATEGORY)
        .options(selectinload(Model.price).selectinload(ModelPrice.tiers))
        .order_by(Model.id)
    )
    return list(await session.scalars(query))
