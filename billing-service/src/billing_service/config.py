"""Settings of billing-service, from the environment (`.env` supplies defaults)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import ConsumerSettings


class BillingServiceSettings(ConsumerSettings):
    billing_service_port: int = 8003

    @property
    def listen_port(self) -> int:
        return self.billing_service_port


@lru_cache
def get_settings() -> BillingServiceSettings:
    return BillingServiceSettings()  # required secrets come from the environment
