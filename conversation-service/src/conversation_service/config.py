"""Settings of conversation-service, from the environment (`.env` supplies defaults)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import ConsumerSettings


class ConversationServiceSettings(ConsumerSettings):
    conversation_service_port: int = 8002

    @property
    def listen_port(self) -> int:
        return self.conversation_service_port


@lru_cache
def get_settings() -> ConversationServiceSettings:
    return ConversationServiceSettings()  # required secrets come from the environment
