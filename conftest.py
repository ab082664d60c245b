"""Test harness: a throwaway database, a private redis-server and every process started for real.

Each run gets its own database (`aigcspace_test_<random>`, migrated from migrations/ and dropped at
the end), its own redis-server on a free port, and its own ports for the stand-in, the three services
and the gateway, so runs never touch dev data and two runs cannot collide.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parent
PG_SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class RedisServer:
    """A redis-server of this test run's own, which tests may stop and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class ScratchDatabase:
    name: str
    url: str  # plain postgresql:// URL, as DATABASE_URL takes it

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="aigcspace-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def secrets_env() -> dict[str, str]:
    return {
        "JWT_SECRET": secrets.token_urlsafe(40),
        "INTERNAL_SECRET": secrets.token_urlsafe(40),
        "APIKEY_ENCRYPTION_KEY": secrets.token_urlsafe(40),
    }


@pytest.fixture(scope="session")
def database(secrets_env: dict[str, str]) -> Iterator[ScratchDatabase]:
    """A fresh database with the real migrations and the demo data."""
    name = f"aigcspace_test_{uuid.uuid4().hex[:12]}"
    base = PG_SERVER_URL.rsplit("/", 1)[0]
    with psycopg.connect(PG_SERVER_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db = ScratchDatabase(name=name, url=f"{base}/{name}")
    env = {**os.environ, "DATABASE_URL": db.url, **secrets_env}
    for step in ("migrate", "demo"):
        subprocess.run(
            [sys.executable, "-m", "shared.bootstrap", step],
            env=env,
            check=True,
            cwd=ROOT / "migrations",
            capture_output=True,
        )
    yield db
    with psycopg.connect(PG_SERVER_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    yield server
    server.stop()


PROCESSES = {
    # name: (module, port variable)
    "standin": ("dashscope_standin", "STANDIN_PORT"),
    "conversation": ("conversation_service", "CONVERSATION_SERVICE_PORT"),
    "billing": ("billing_service", "BILLING_SERVICE_PORT"),
    "llm": ("llm_service", "LLM_SERVICE_PORT"),
    "gateway": ("gateway", "GATEWAY_PORT"),
}


@dataclass
class System:
    """Every process of the system, started for this test run."""

    env: dict[str, str]
    ports: dict[str, int]
    workdir: Path
    redis: RedisServer
    database: ScratchDatabase
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def gateway(self) -> str:
        return self.url("gateway")

    @property
    def standin(self) -> str:
        return self.url("standin")

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def start(self, name: str, *, extra_env: dict[str, str] | None = None, wait: bool = True) -> None:
        module, _ = PROCESSES[name]
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**self.env, **(extra_env or {})},
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            wait_http(self.url(name) + "/healthz", process=self.processes[name])

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def system_env(
    database: ScratchDatabase, redis_server: RedisServer, secrets_env: dict[str, str]
) -> dict[str, str]:
    ports = {name: free_port() for name in PROCESSES}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "STANDIN_"))},
        **secrets_env,
        "DATABASE_URL": database.url,
        "REDIS_URL": redis_server.url,
        "DASHSCOPE_BASE_URL": f"http://127.0.0.1:{ports['standin']}/api/v1",
        "LLM_SERVICE_URL": f"http://127.0.0.1:{ports['llm']}",
        "CONVERSATION_SERVICE_URL": f"http://127.0.0.1:{ports['conversation']}",
        "BILLING_SERVICE_URL": f"http://127.0.0.1:{ports['billing']}",
        "CONSUMER_CLAIM_IDLE_MS": "2000",
        "CONSUMER_CLAIM_INTERVAL_S": "0.5",
        "OUTBOX_POLL_INTERVAL_S": "0.2",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    for name, (_, variable) in PROCESSES.items():
        env[variable] = str(ports[name])
    return env


@pytest.fixture(scope="session")
def system(
    system_env: dict[str, str], workdir: Path, redis_server: RedisServer, database: ScratchDatabase
) -> Iterator[System]:
    """The stand-in, conversation-, billing- and llm-service and the gateway, each a real process."""
    ports = {name: int(system_env[variable]) for name, (_, variable) in PROCESSES.items()}
    running = System(env=system_env, ports=ports, workdir=workdir, redis=redis_server, database=database)
    try:
        for name in PROCESSES:
            running.start(name, wait=False)
        for name in PROCESSES:
            wait_http(running.url(name) + "/healthz", process=running.processes[name])
        yield running
    finally:
        for name in reversed(list(running.processes)):
            running.stop(name)


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
