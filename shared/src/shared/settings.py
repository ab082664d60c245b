"""Typed settings shared by every process: read from the environment, `.env` supplying defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

if TYPE_CHECKING:
    from shared.messaging import ConsumerOptions
    from shared.security import ApiKeyCipher

MIN_SECRET_BYTES = 32
# What reading bad settings raises: a process refuses to start with one line (anything else is a bug).
SETTINGS_ERRORS = (ValidationError, SettingsError)


def check_secret(value: str) -> str:
    """Validator body of every secret setting: long enough to resist guessing (checked by length only,
    so the value never appears in an error)."""
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
    return value


class BaseServiceSettings(BaseSettings):
    """What every backend service needs: its database, Redis and the internal-credential secret."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/aigcspace"
    redis_url: str = "redis://127.0.0.1:6379/0"
    internal_secret: str
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    db_pool_size: int = Field(default=10, ge=1)
    # How long a stopping process lets the requests in flight finish (a reply being written included)
    # before it cuts them; a container manager must wait longer than this before it kills the process.
    shutdown_grace_seconds: int = Field(default=30, ge=0)
    # How long an internal credential is valid; shorter than a call may take would refuse calls.
    internal_token_ttl_seconds: int = Field(default=60, ge=10)

    @property
    def listen_port(self) -> int:
        """The port this process listens on; each service maps it to its own variable."""
        raise NotImplementedError

    @field_validator("internal_secret")
    @classmethod
    def _internal_secret_long_enough(cls, value: str) -> str:
        return check_secret(value)


def split_keys(value: str) -> list[str]:
    """APIKEY_ENCRYPTION_PREVIOUS_KEYS as a list: comma-separated, blanks ignored."""
    return [part.strip() for part in value.split(",") if part.strip()]


class ApiKeySettings(BaseServiceSettings):
    """A service that reads users' DashScope keys (gateway, llm-service): the secret they are encrypted
    under, and the secrets it replaced, still read until `python -m shared.bootstrap rekey` has
    re-encrypted every stored key."""

    apikey_encryption_key: str
    apikey_encryption_previous_keys: str = ""  # comma-separated

    @field_validator("apikey_encryption_key")
    @classmethod
    def _apikey_key_strong(cls, value: str) -> str:
        return check_secret(value)

    @field_validator("apikey_encryption_previous_keys")
    @classmethod
    def _previous_keys_strong(cls, value: str) -> str:
        for key in split_keys(value):
            check_secret(key)
        return value

    def apikey_cipher(self) -> ApiKeyCipher:
        from shared.security import ApiKeyCipher  # argon2 and all: only the services that need it

        return ApiKeyCipher(
            self.apikey_encryption_key, previous=split_keys(self.apikey_encryption_previous_keys)
        )


def settings_error_line(error: Exception) -> str:
    """One line saying which setting is wrong, without echoing its value."""
    if isinstance(error, ValidationError):
        parts = []
        for item in error.errors():
            name = ".".join(str(x) for x in item["loc"]).upper()
            reason = "is missing" if item["type"] == "missing" else item["msg"].removeprefix("Value error, ")
            parts.append(f"{name} {reason}")
        return "invalid settings: " + "; ".join(parts)
    return f"invalid settings: {error}"


class ConsumerSettings(BaseServiceSettings):
    """Settings of a service that consumes the completion stream."""

    consumer_enabled: bool = True
    consumer_batch_size: int = 50
    consumer_block_ms: int = 1000
    consumer_claim_idle_ms: int = 15_000
    consumer_claim_interval_s: float = 5.0
    consumer_max_deliveries: int = 5
    consumer_housekeeping_interval_s: float = Field(default=3600.0, gt=0)
    # Far above CONSUMER_BLOCK_MS: a live consumer (it reads at least every block) never looks idle that long.
    consumer_forget_idle_ms: int = Field(default=3_600_000, ge=60_000)

    def consumer_options(self) -> ConsumerOptions:
        from shared.messaging import ConsumerOptions

        return ConsumerOptions(
            batch_size=self.consumer_batch_size,
            block_ms=self.consumer_block_ms,
            claim_idle_ms=self.consumer_claim_idle_ms,
            claim_interval_s=self.consumer_claim_interval_s,
            max_deliveries=self.consumer_max_deliveries,
            housekeeping_interval_s=self.consumer_housekeeping_interval_s,
            forget_consumer_idle_ms=self.consumer_forget_idle_ms,
        )
