"""Run the stand-in as a real server (a subprocess) for the whole test session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import dashscope
import pytest
from standin_server import StandIn

from harness import free_port, spawn, stop_process, wait_http

os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ["no_proxy"] = "127.0.0.1,localhost"


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """Start `python -m dashscope_standin` on a free port and wait until /healthz answers."""
    port = free_port()
    env = {
        **os.environ,
        "STANDIN_PORT": str(port),
        "STANDIN_HOST": "127.0.0.1",
        "STANDIN_CHUNK_CHARS": "4",
        "STANDIN_CHUNK_DELAY_MS": "0",
    }
    workdir = tmp_path_factory.mktemp("standin")
    process = spawn("dashscope_standin", env=env, workdir=workdir, log_name="standin")
    server = StandIn(port)
    try:
        wait_http(f"{server.url}/healthz", timeout=15, process=process)
        yield server
    finally:
        stop_process(process, timeout=5)


@pytest.fixture
async def aio_sdk() -> AsyncIterator[None]:
    """Close the SDK's shared aiohttp session after an async test, as the SDK asks."""
    yield
    await dashscope.close_shared_aio_session()
