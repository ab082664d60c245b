"""The running stand-in as the tests see it (a module of its own: test dirs share the name `conftest`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import pytest


@dataclass(frozen=True)
class StandIn:
    """Where the running stand-in listens."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_address(self) -> str:
        """What the SDK takes as `base_address`."""
        return f"{self.url}/api/v1"

    @property
    def generation_url(self) -> str:
        return f"{self.base_address}/services/aigc/text-generation/generation"

    def calls(self, api_key: str) -> list[dict[str, object]]:
        """The logged calls made with `api_key` (each test uses its own key, so tests stay independent)."""
        response = httpx.get(f"{self.url}/_standin/calls", timeout=5)
        response.raise_for_status()
        return [call for call in response.json() if call["api_key"] == api_key]

    def wait_for_outcome(self, api_key: str, outcome: str, timeout: float = 3.0) -> dict[str, object]:
        """Poll the call log until the last call with `api_key` has `outcome`; fail with what was seen."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            seen = self.calls(api_key)
            if seen and seen[-1]["outcome"] == outcome:
                return seen[-1]
            time.sleep(0.05)
        pytest.fail(f"no call with outcome {outcome!r} for {api_key!r}; log has {seen}")
