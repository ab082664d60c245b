"""Test fixtures and helpers: a throwaway database, a private redis-server and every process started for
real, from the process machinery in `harness.py` (shared with the benchmarks).

Each run gets its own database (`aigcspace_test_<random>`, migrated from migrations/ and dropped at
the end), its own redis-server on a free port, and its own ports for the stand-in, the three services
and the gateway, so runs never touch dev data and two runs cannot collide.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import (
    TEST_TUNING,
    RedisServer,
    ScratchDatabase,
    System,
    build_system_env,
    free_port,
    make_secrets_env,
    private_redis,
    scratch_database,
    spawn,
    stop_process,
    wait_http,
)

# Debian's Chromium for the browser tests and the screenshots; Playwright's own download cannot work
# offline. The flags keep it from calling out to a network it does not have.
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="aigcspace-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def secrets_env() -> dict[str, str]:
    return make_secrets_env()


@pytest.fixture(scope="session")
def database(secrets_env: dict[str, str]) -> Iterator[ScratchDatabase]:
    """A fresh database with the real migrations and the demo data."""
    with scratch_database(prefix="aigcspace_test", secrets_env=secrets_env) as db:
        yield db


@pytest.fixture(scope="session")
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    with private_redis(workdir) as server:
        yield server


@pytest.fixture(scope="session")
def system_env(
    database: ScratchDatabase, redis_server: RedisServer, secrets_env: dict[str, str]
) -> dict[str, str]:
    return build_system_env(
        database=database, redis=redis_server, secrets_env=secrets_env, tuning=TEST_TUNING
    )


@pytest.fixture(scope="session")
def system(
    system_env: dict[str, str], workdir: Path, redis_server: RedisServer, database: ScratchDatabase
) -> Iterator[System]:
    """The stand-in, conversation-, billing- and llm-service and the gateway, each a real process."""
    running = System.from_env(env=system_env, workdir=workdir, redis=redis_server, database=database)
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


@pytest.fixture
async def gateway(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the gateway, as a browser or SDK user would reach it."""
    async with httpx.AsyncClient(base_url=system.gateway, timeout=30) as client:
        yield client


@dataclass
class UserSession:
    """A registered, logged-in user with a DashScope key the stand-in accepts."""

    id: int
    username: str
    password: str
    token: str
    apikey: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_user(client: httpx.AsyncClient, *, apikey: str | None = "sk-test-key-1234") -> UserSession:
    username = f"u_{uuid.uuid4().hex[:12]}"
    password = "correct-horse-battery"
    response = await client.post("/api/auth/register", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    user_id = response.json()["data"]["id"]
    response = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token = response.json()["data"]["access_token"]
    session = UserSession(id=user_id, username=username, password=password, token=token, apikey=apikey)
    if apikey is not None:
        response = await client.put("/api/users/me/apikey", json={"apikey": apikey}, headers=session.headers)
        assert response.status_code == 200, response.text
    return session


@pytest.fixture
async def user(gateway: httpx.AsyncClient) -> UserSession:
    return await make_user(gateway)


# --- Service-level helpers (conversation- and billing-service tests): no gateway needed -----------------


def create_db_user(database: ScratchDatabase) -> int:
    """A user row made straight in the database; returns its id."""
    with database.connect() as conn:
        row = conn.execute(
            "INSERT INTO aigcspace.users (username, password_hash) VALUES (%s, 'not-a-hash') RETURNING id",
            (f"svc_{uuid.uuid4().hex[:12]}",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def internal_headers(system: System, *, user_id: int, audience: str) -> dict[str, str]:
    """The credential the gateway (or llm-service) sends to `audience` when acting for `user_id`."""
    from shared.tokens import INTERNAL_TOKEN_HEADER, create_internal_token

    token = create_internal_token(
        secret=system.env["INTERNAL_SECRET"], user_id=user_id, audience=audience, caller="test"
    )
    return {INTERNAL_TOKEN_HEADER: token}


def model_id_of(database: ScratchDatabase, name: str) -> int:
    with database.connect() as conn:
        row = conn.execute("SELECT id FROM aigcspace.model WHERE name = %s", (name,)).fetchone()
    assert row is not None, name
    return int(row[0])


@pytest.fixture
async def conversation_api(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client straight on conversation-service (add `internal_headers` per call)."""
    async with httpx.AsyncClient(base_url=system.url("conversation"), timeout=30) as client:
        yield client


@pytest.fixture
async def billing_api(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client straight on billing-service (add `internal_headers` per call)."""
    async with httpx.AsyncClient(base_url=system.url("billing"), timeout=30) as client:
        yield client


@pytest.fixture
async def stream_redis(system: System) -> AsyncIterator[Any]:
    """A client on the test run's Redis, to publish completion events as llm-service's relay does."""
    from redis.asyncio import Redis

    client = Redis.from_url(system.redis.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def publish_events(redis: Any, *events: Any, atomic: bool = False) -> list[str]:
    """XADD each event (a shared.events.CompletionEvent) to the completion stream; the entry ids.

    `atomic`: in one MULTI, so a waiting consumer receives them all in one batch."""
    from shared.events import COMPLETION_STREAM, STREAM_MAX_LEN

    async with redis.pipeline(transaction=atomic) as pipe:
        for event in events:
            pipe.xadd(COMPLETION_STREAM, event.to_stream_fields(), maxlen=STREAM_MAX_LEN, approximate=True)
        return [str(entry_id) for entry_id in await pipe.execute()]


async def stream_stopping(
    client: httpx.AsyncClient, system: System, name: str, *, body: dict[str, Any], headers: dict[str, str]
) -> tuple[bytes, int]:
    """Stream a chat, stopping process `name` (SIGTERM) as soon as the first bytes arrive; the bytes the
    client got and the conversation. The caller starts the process again."""
    received = b""
    stopping: asyncio.Task[None] | None = None
    try:
        async with client.stream("POST", "/api/llm/chat", json=body, headers=headers) as response:
            assert response.status_code == 200
            conversation_id = int(response.headers["X-Conversation-Id"])
            async for piece in response.aiter_raw():
                received += piece
                if stopping is None:
                    stopping = asyncio.create_task(asyncio.to_thread(system.stop, name))
    finally:
        if stopping is not None:
            await stopping
    assert stopping is not None
    return received, conversation_id


async def eventually(check: Any, *, timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Call `check` (sync or async) until it returns a truthy value; fail with the last value seen."""
    import asyncio
    import inspect

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the test process goes, however it goes."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_DEATHSIG


def start_consumer_processes(
    system: System,
    *specs: tuple[str, str],
    extra_env: dict[str, str] | None = None,
    track: list[subprocess.Popen[bytes]] | None = None,
) -> list[subprocess.Popen[bytes]]:
    """`python -m <module>` for each (module, label), e.g. ("conversation_service.consumer", "extra-1"):
    more consumers of the group, each logging to `<workdir>/<label>.log`. Started together; returns once
    each has said it started. Each process is appended to `track` as soon as it exists (see the
    `consumer_processes` fixture, which stops them whatever happens to the test)."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    for module, label in specs:
        log_path = system.workdir / f"{label}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**system.env, **(extra_env or {})},
            cwd=system.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # pytest starts no threads that could hold a lock here
        )
        if track is not None:
            track.append(process)
        started.append((process, log_path))
    deadline = time.monotonic() + 60
    for process, log_path in started:
        while "consumer process started" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                for other, _ in started:
                    other.kill()
                raise RuntimeError(f"consumer did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
    return [process for process, _ in started]


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (a consumer then stops cleanly and logs what it applied), SIGKILL after 15 s."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def consumer_processes(system: System) -> Iterator[Any]:
    """`start(*specs, extra_env=None)`: extra consumer processes (see `start_consumer_processes`), all
    stopped when the test ends, also when it fails or times out."""
    tracked: list[subprocess.Popen[bytes]] = []

    def start(
        *specs: tuple[str, str], extra_env: dict[str, str] | None = None
    ) -> list[subprocess.Popen[bytes]]:
        return start_consumer_processes(system, *specs, extra_env=extra_env, track=tracked)

    try:
        yield start
    finally:
        stop_processes(tracked)


class LlmInstances:
    """Extra llm-service processes (e.g. with short DashScope timeouts), one per distinct setting, on
    ports of their own; they share the run's database, Redis and other services."""

    def __init__(self, system: System) -> None:
        self.system = system
        self._running: dict[frozenset[tuple[str, str]], tuple[str, subprocess.Popen[bytes]]] = {}

    def url(self, **extra_env: str) -> str:
        """The URL of an instance started with `extra_env` (started on first use)."""
        key = frozenset(extra_env.items())
        if key not in self._running:
            port = free_port()
            process = spawn(
                "llm_service",
                env={**self.system.env, **extra_env, "LLM_SERVICE_PORT": str(port)},
                workdir=self.system.workdir,
                log_name=f"llm-{port}",
            )
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/healthz", process=process)
            self._running[key] = (url, process)
        return self._running[key][0]

    def stop_all(self) -> None:
        for _, process in self._running.values():
            stop_process(process)
        self._running.clear()


@pytest.fixture(scope="session")
def llm_instances(system: System) -> Iterator[LlmInstances]:
    instances = LlmInstances(system)
    try:
        yield instances
    finally:
        instances.stop_all()


class ServiceChat:
    """A user (made in the database) with one conversation on conversation-service, and completion
    events for it, to publish as llm-service would."""

    def __init__(self, system: System, client: httpx.AsyncClient) -> None:
        self.system, self.client = system, client
        self.user_id = create_db_user(system.database)
        self.conversation_id = 0

    def headers(self) -> dict[str, str]:
        return internal_headers(self.system, user_id=self.user_id, audience="conversation-service")

    async def start(self, title: str = "chat") -> ServiceChat:
        response = await self.client.post("/api/conversations", json={"title": title}, headers=self.headers())
        assert response.status_code == 201, response.text
        self.conversation_id = response.json()["data"]["id"]
        return self

    def event(
        self,
        user: str,
        *,
        reply: str | None = None,
        input_tokens: int = 10,
        output_tokens: int = 5,
        system_prompt: str | None = None,
        model: str = "qwen-plus",
    ) -> Any:
        """A shared.events.CompletionEvent of one reply in this conversation."""
        from shared.events import CompletionEvent, StoredMessage, Usage

        stored = [StoredMessage(role="system", content=system_prompt)] if system_prompt else []
        stored.append(StoredMessage(role="user", content=user))
        return CompletionEvent(
            user_id=self.user_id,
            conversation_id=self.conversation_id,
            model_id=model_id_of(self.system.database, model),
            model_name=model,
            request_id=uuid.uuid4().hex,
            messages_to_store=stored,
            assistant_content=reply if reply is not None else f"Echo: {user}",
            finish_reason="stop",
            status="completed",
            usage=Usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            ),
        )

    async def detail(self) -> dict[str, Any]:
        response = await self.client.get(f"/api/conversations/{self.conversation_id}", headers=self.headers())
        assert response.status_code == 200, response.text
        return response.json()["data"]

    async def wait_for_messages(self, count: int, timeout: float = 5.0) -> dict[str, Any]:
        async def enough() -> dict[str, Any] | None:
            detail = await self.detail()
            return detail if len(detail["messages"]) >= count else None

        detail: dict[str, Any] = await eventually(enough, timeout=timeout)
        return detail

    def processed(self, event: Any) -> bool:
        """Whether conversation-service has applied `event`."""
        with self.system.database.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM aigcspace.conversation_processed_event WHERE event_id = %s", (event.event_id,)
            ).fetchone()
        return row is not None
