"""Settings of llm-service, from the environment (`.env` supplies defaults)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import BaseServiceSettings


class LlmServiceSettings(BaseServiceSettings):
    llm_service_port: int = 8001

    @property
    def listen_port(self) -> int:
        return self.llm_service_port


@lru_cache
def get_settings() -> LlmServiceSettings:
    return LlmServiceSettings()  # required secrets come from the environment
