"""Settings of the stand-in, read once at start-up from the environment, with `.env` (in the working
directory) supplying defaults, as for every other process of the project."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dotenv import dotenv_values


def _int_env(variables: Mapping[str, str | None], name: str, default: int, minimum: int) -> int:
    """Read an integer variable, failing loudly on nonsense so a typo is not silently ignored."""
    raw = (variables.get(name) or "").strip()
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
        """Build settings from `STANDIN_*` variables (the environment wins over `.env`), defaults as in
        the contract."""
        variables = {**dotenv_values(".env"), **os.environ}
        return cls(
            host=(variables.get("STANDIN_HOST") or "").strip() or "127.0.0.1",
            port=_int_env(variables, "STANDIN_PORT", 8090, 0),
            chunk_chars=_int_env(variables, "STANDIN_CHUNK_CHARS", 4, 1),
            chunk_delay_ms=_int_env(variables, "STANDIN_CHUNK_DELAY_MS", 0, 0),
        )
