"""Run the stand-in as a real server (a subprocess) for the whole test session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import dashscope
import httpx
import pytest

os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ["no_proxy"] = "127.0.0.1,localhost"


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    """Start `python -m dashscope_standin` on a free port and wait until /healthz answers."""
    port = _free_port()
    env = {
        **os.environ,
        "STANDIN_PORT": str(port),
        "STANDIN_HOST": "127.0.0.1",
        "STANDIN_CHUNK_CHARS": "4",
        "STANDIN_CHUNK_DELAY_MS": "0",
    }
    process = subprocess.Popen([sys.executable, "-m", "dashscope_standin"], env=env)
    server = StandIn(port)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                pytest.fail(f"stand-in exited with {process.returncode}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("stand-in did not answer /healthz within 15 s")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
async def aio_sdk() -> AsyncIterator[None]:
    """Close the SDK's shared aiohttp session after an async test, as the SDK asks."""
    yield
    await dashscope.close_shared_aio_session()
