"""Settings of llm-service, from the environment (`.env` supplies defaults)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from shared.settings import ApiKeySettings


class LlmServiceSettings(ApiKeySettings):
    """Where DashScope and conversation-service are, how long to wait for DashScope, how to relay events."""

    llm_service_port: int = 8001

    dashscope_base_url: str = "http://127.0.0.1:8090/api/v1"
    conversation_service_url: str = "http://127.0.0.1:8002"

    # Opening the TCP (and TLS) connection to DashScope.
    dashscope_connect_timeout_s: float = Field(default=5.0, gt=0)
    # From the call to a stream's first event.
    dashscope_first_token_timeout_s: float = Field(default=60.0, gt=0)
    # Longest silence between two events of a stream once it has started.
    dashscope_idle_timeout_s: float = Field(default=60.0, gt=0)
    # A non-stream reply arrives in one piece, after the whole generation: this bounds it.
    dashscope_request_timeout_s: float = Field(default=300.0, gt=0)
    # Concurrent connections to DashScope; 0 means no limit (every stream holds one).
    dashscope_max_connections: int = Field(default=0, ge=0)

    # How long a model row read for a chat is reused (CONTRACT: changes seen within 60 s).
    model_cache_ttl_s: float = Field(default=10.0, ge=0, le=60)

    outbox_poll_interval_s: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=100, gt=0)
    # A running stream's event is kept in the outbox under a lease renewed this often; once a lease expired
    # (its process died), the relay publishes the event as it was last written.
    journal_lease_seconds: float = Field(default=60.0, gt=0)
    journal_renew_seconds: float = Field(default=20.0, gt=0)
    # ... from this long after it started: a shorter reply costs no database write (most of a busy
    # service's are short), and what a kill within it loses is little.
    journal_after_seconds: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _renewed_before_the_lease_expires(self) -> LlmServiceSettings:
        if self.journal_renew_seconds >= self.journal_lease_seconds:
            raise ValueError("JOURNAL_RENEW_SECONDS must be shorter than JOURNAL_LEASE_SECONDS")
        return self

    @property
    def listen_port(self) -> int:
        return self.llm_service_port


@lru_cache
def get_settings() -> LlmServiceSettings:
    return LlmServiceSettings()  # required secrets come from the environment
