"""Settings of the stand-in, read from the environment once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int_env(name: str, default: int, minimum: int) -> int:
    """Read an integer variable, failing loudly on nonsense so a typo is not silently ignored."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """Where to listen and how to pace streams."""

    host: str = "127.0.0.1"
    port: int = 8090
    chunk_chars: int = 4
    chunk_delay_ms: int = 0

    @classmethod
    def from_env(cls) -> Settings:
        """Build settings from `STANDIN_*` variables, defaults as in the contract."""
        return cls(
            host=os.environ.get("STANDIN_HOST", "").strip() or "127.0.0.1",
            port=_int_env("STANDIN_PORT", 8090, 0),
            chunk_chars=_int_env("STANDIN_CHUNK_CHARS", 4, 1),
            chunk_delay_ms=_int_env("STANDIN_CHUNK_DELAY_MS", 0, 0),
        )
