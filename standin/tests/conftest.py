"""Run the stand-in as a real server (a subprocess) for the whole test session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import dashscope
import httpx
import pytest
from standin_server import StandIn

os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ["no_proxy"] = "127.0.0.1,localhost"


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
