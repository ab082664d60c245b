"""Settings of billing-service, from the environment (`.env` supplies defaults)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from shared.settings import ConsumerSettings


class BillingServiceSettings(ConsumerSettings):
    billing_service_port: int = 8003
    # How long a model's price is cached; operators' changes must show within 60 s (CONTRACT §2).
    price_cache_ttl_s: float = Field(default=15.0, ge=0, le=60)

    @property
    def listen_port(self) -> int:
        return self.billing_service_port


@lru_cache
def get_settings() -> BillingServiceSettings:
    return BillingServiceSettings()  # required secrets come from the environment
