"""Settings of gateway, from the environment (`.env` supplies defaults)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, ValidationInfo, field_validator
from shared.internal_http import KEEPALIVE_SECONDS
from shared.settings import ApiKeySettings, check_secret


class GatewaySettings(ApiKeySettings):
    """The public entry: user tokens, key encryption, where each service lives and how long to wait."""

    gateway_port: int = 8000
    jwt_secret: str
    jwt_expires_seconds: int = Field(default=86_400, gt=0)

    llm_service_url: str = "http://127.0.0.1:8001"
    conversation_service_url: str = "http://127.0.0.1:8002"
    billing_service_url: str = "http://127.0.0.1:8003"

    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    upstream_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    # No total timeout: a chat stream may last minutes. Only silence this long ends a call to llm-service
    # (a whole non-stream reply may take as long to generate) ...
    upstream_read_timeout_seconds: float = Field(default=300.0, gt=0)
    # ... and this long one to conversation- or billing-service, which answer from their database.
    upstream_data_read_timeout_seconds: float = Field(default=30.0, gt=0)
    # Idle keep-alive connections are dropped before the services' uvicorn closes them, so a pooled
    # connection is never reused just as the server hangs up.
    upstream_keepalive_seconds: float = Field(default=KEEPALIVE_SECONDS, gt=0)
    # How long a proxied call may rely on a user having been found active; 0 asks the database each time.
    user_status_cache_seconds: float = Field(default=2.0, ge=0)
    password_hash_concurrency: int = Field(default=4, gt=0)
    # Failed logins a username may have in a window before it is refused (429) until the window ends;
    # 0 turns the limit off, as in the dev run (CONTRACT: rate limits are settings, off in dev).
    login_max_failures: int = Field(default=0, ge=0)
    login_failure_window_seconds: int = Field(default=900, gt=0)

    @property
    def listen_port(self) -> int:
        return self.gateway_port

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret_strong(cls, value: str, info: ValidationInfo) -> str:
        check_secret(value)
        if value == info.data.get("internal_secret"):
            raise ValueError("must differ from INTERNAL_SECRET")
        return value


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()  # required secrets come from the environment
