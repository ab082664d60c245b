"""Settings of gateway, from the environment (`.env` supplies defaults)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import BaseServiceSettings


class GatewaySettings(BaseServiceSettings):
    gateway_port: int = 8000

    @property
    def listen_port(self) -> int:
        return self.gateway_port


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()  # required secrets come from the environment
