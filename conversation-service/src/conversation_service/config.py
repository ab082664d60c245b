"""Settings of conversation-service, from the environment (`.env` supplies defaults)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from shared.settings import ConsumerSettings


class ConversationServiceSettings(ConsumerSettings):
    conversation_service_port: int = 8002
    # How long an applied event's id is remembered, so a re-published event changes nothing. Events
    # are re-published within seconds (the outbox relay) or by hand from the dead letter; a month
    # leaves room for the latter.
    processed_event_retention_days: int = Field(default=30, ge=1)

    @property
    def listen_port(self) -> int:
        return self.conversation_service_port


@lru_cache
def get_settings() -> ConversationServiceSettings:
    return ConversationServiceSettings()  # required secrets come from the environment
