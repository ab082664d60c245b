"""Reading a model's price (model_price and its tiers)."""

from __future__ import annotations

from shared.models import ModelPrice
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload


async def get_price(session: AsyncSession, *, model_id: int) -> ModelPrice | None:
    """The model's price with its tiers loaded (ordered by min_tokens), or None."""
    statement = (
        select(ModelPrice)
        .where(ModelPrice.model_id == model_id)
        .options(selectinload(ModelPrice.tiers))
        .execution_options(populate_existing=True)
    )
    return await session.scalar(statement)
