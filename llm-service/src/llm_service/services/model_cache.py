"""The chat models by name, kept for a few seconds: every chat needs its model, and the table rarely
changes (CONTRACT: a change must be seen within 60 s). Only models found are kept, so a model added in
the tables can be used at once; a found one that is changed or deactivated is seen within the TTL."""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.db import SessionFactory, storable_text, unit_of_work

from llm_service.repositories import model_repository


@dataclass(frozen=True)
class ModelInfo:
    """What a chat needs of a model row."""

    id: int
    name: str
    category: int
    is_active: bool


class ModelCache:
    """Model rows by name, each read from the database at most once per TTL."""

    def __init__(self, sessions: SessionFactory, *, ttl: float) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._entries: dict[str, tuple[float, ModelInfo]] = {}

    async def get(self, name: str) -> ModelInfo | None:
        """The model named `name` (active or not), or None when there is none. A name no row can hold
        (a NUL, a lone surrogate) names none: PostgreSQL could not even compare with it."""
        if storable_text(name) != name:
            return None
        now = time.monotonic()
        entry = self._entries.get(name)
        if entry is not None and entry[0] > now:
            return entry[1]
        async with unit_of_work(self._sessions) as db:
            model = await model_repository.get_model_by_name(db, name)
            info = (
                None
                if model is None
                else ModelInfo(
                    id=model.id, name=model.name, category=model.category, is_active=model.is_active
                )
            )
        if info is None:
            self._entries.pop(name, None)
        else:
            if len(self._entries) > 1000:  # only existing models are kept; a backstop all the same
                self._entries.clear()
            self._entries[name] = (now + self._ttl, info)
        return info
