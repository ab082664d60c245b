"""Process machinery shared by the tests (conftest.py) and the benchmarks (bench/).

A run gets its own database (`<prefix>_<random>`, migrated from migrations/, demo data loaded, dropped
at the end), its own redis-server on a free port, and its own ports for the stand-in, the three services
and the gateway, so runs never touch dev data and two runs cannot collide. Each process is started for
real (`python -m <module>`) with cwd = a temp dir, its output in `<workdir>/<name>.log`.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent
PG_SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
LOCALHOST = "127.0.0.1"

PROCESSES: dict[str, tuple[str, str]] = {
    # name: (module, port variable); started in this order, stopped in reverse.
    "standin": ("dashscope_standin", "STANDIN_PORT"),
    "conversation": ("conversation_service", "CONVERSATION_SERVICE_PORT"),
    "billing": ("billing_service", "BILLING_SERVICE_PORT"),
    "llm": ("llm_service", "LLM_SERVICE_PORT"),
    "gateway": ("gateway", "GATEWAY_PORT"),
}

# Shorter reclaim and relay intervals and a shorter shutdown grace, so the tests of those paths are
# fast. The benchmarks use the services' own defaults instead.
TEST_TUNING = {
    "SHUTDOWN_GRACE_SECONDS": "5",
    "CONSUMER_CLAIM_IDLE_MS": "2000",
    "CONSUMER_CLAIM_INTERVAL_S": "0.5",
    "OUTBOX_POLL_INTERVAL_S": "0.2",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Return once `url` answers below 500; fail early if `process` exits first."""
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


def raise_open_file_limit() -> None:
    """Thousands of streams over two hops need more than the usual 1,024 descriptors; children inherit
    the raised soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def spawn(
    module: str, *, env: dict[str, str], workdir: Path, log_name: str, args: Iterable[str] = ()
) -> subprocess.Popen[bytes]:
    """`python -m <module>` with `env`, cwd `workdir`, stdout and stderr appended to `<log_name>.log`."""
    with open(workdir / f"{log_name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", module, *args],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


class RedisServer:
    """A redis-server of this run's own, which may be stopped and started again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOCALHOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(  # noqa: S603 - the system's redis-server
            [
                binary,
                *("--port", str(self.port), "--bind", LOCALHOST),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((LOCALHOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None


@dataclass
class ScratchDatabase:
    name: str
    url: str  # plain postgresql:// URL, as DATABASE_URL takes it

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)


def make_secrets_env() -> dict[str, str]:
    """Fresh secrets for one run."""
    return {
        "JWT_SECRET": secrets.token_urlsafe(40),
        "INTERNAL_SECRET": secrets.token_urlsafe(40),
        "APIKEY_ENCRYPTION_KEY": secrets.token_urlsafe(40),
    }


def create_scratch_database(*, prefix: str, secrets_env: dict[str, str]) -> ScratchDatabase:
    """A new database `<prefix>_<random>` with the real migrations and the demo data."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    base = PG_SERVER_URL.rsplit("/", 1)[0]
    with psycopg.connect(PG_SERVER_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db = ScratchDatabase(name=name, url=f"{base}/{name}")
    env = {**os.environ, "DATABASE_URL": db.url, **secrets_env}
    try:
        for step in ("migrate", "demo"):
            subprocess.run(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "shared.bootstrap", step],
                env=env,
                check=True,
                cwd=ROOT / "migrations",
                capture_output=True,
            )
    except BaseException:
        drop_scratch_database(db)
        raise
    return db


def drop_scratch_database(db: ScratchDatabase) -> None:
    with psycopg.connect(PG_SERVER_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name)))


@contextlib.contextmanager
def scratch_database(*, prefix: str, secrets_env: dict[str, str]) -> Iterator[ScratchDatabase]:
    db = create_scratch_database(prefix=prefix, secrets_env=secrets_env)
    try:
        yield db
    finally:
        drop_scratch_database(db)


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def build_system_env(
    *,
    database: ScratchDatabase,
    redis: RedisServer,
    secrets_env: dict[str, str],
    tuning: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment every process gets: this run's database, Redis, secrets and free ports. Any
    DASHSCOPE_*/STANDIN_* variable of the caller's environment is dropped so the run is hermetic."""
    ports = {name: free_port() for name in PROCESSES}
    env = {
        # PYTHONDONTWRITEBYTECODE is dropped so processes keep bytecode caches between starts.
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DASHSCOPE_", "STANDIN_")) and k != "PYTHONDONTWRITEBYTECODE"
        },
        **secrets_env,
        "DATABASE_URL": database.url,
        "REDIS_URL": redis.url,
        "DASHSCOPE_BASE_URL": f"http://{LOCALHOST}:{ports['standin']}/api/v1",
        "LLM_SERVICE_URL": f"http://{LOCALHOST}:{ports['llm']}",
        "CONVERSATION_SERVICE_URL": f"http://{LOCALHOST}:{ports['conversation']}",
        "BILLING_SERVICE_URL": f"http://{LOCALHOST}:{ports['billing']}",
        "NO_PROXY": f"{LOCALHOST},localhost",
        "PYTHONUNBUFFERED": "1",
        **(tuning or {}),
    }
    for name, (_, variable) in PROCESSES.items():
        env[variable] = str(ports[name])
    return env


@dataclass
class System:
    """Every process of the system, started for this run."""

    env: dict[str, str]
    ports: dict[str, int]
    workdir: Path
    redis: RedisServer
    database: ScratchDatabase
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls, *, env: dict[str, str], workdir: Path, redis: RedisServer, database: ScratchDatabase
    ) -> System:
        ports = {name: int(env[variable]) for name, (_, variable) in PROCESSES.items()}
        return cls(env=env, ports=ports, workdir=workdir, redis=redis, database=database)

    def url(self, name: str) -> str:
        return f"http://{LOCALHOST}:{self.ports[name]}"

    @property
    def gateway(self) -> str:
        return self.url("gateway")

    @property
    def standin(self) -> str:
        return self.url("standin")

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def pid(self, name: str) -> int:
        """The process id of a running process (for resource figures)."""
        return self.processes[name].pid

    def pids(self) -> dict[str, int]:
        """Every running process by name, redis-server included."""
        pids = {name: process.pid for name, process in self.processes.items() if process.poll() is None}
        if self.redis.pid is not None:
            pids["redis"] = self.redis.pid
        return pids

    def exited(self) -> dict[str, int]:
        """Processes that have exited on their own, with their exit codes."""
        return {
            name: code for name, process in self.processes.items() if (code := process.poll()) is not None
        }

    def start(self, name: str, *, extra_env: dict[str, str] | None = None, wait: bool = True) -> None:
        module, _ = PROCESSES[name]
        self.processes[name] = spawn(
            module, env={**self.env, **(extra_env or {})}, workdir=self.workdir, log_name=name
        )
        if wait:
            wait_http(self.url(name) + "/healthz", timeout=60, process=self.processes[name])

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            stop_process(process)

    def start_all(self, extra_env: dict[str, dict[str, str]] | None = None, timeout: float = 120.0) -> None:
        """Start every process at once, then wait until each answers /healthz (imports of five processes
        at once take a while on a small, busy machine)."""
        raise_open_file_limit()  # inherited by every process started from here on
        for name in PROCESSES:
            self.start(name, extra_env=(extra_env or {}).get(name), wait=False)
        for name in PROCESSES:
            try:
                wait_http(self.url(name) + "/healthz", timeout=timeout, process=self.processes[name])
            except RuntimeError as exc:
                raise RuntimeError(f"{name} did not start: {exc}\n{self.log(name)[-2000:]}") from None

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)


@contextlib.contextmanager
def running_system(
    *,
    prefix: str = "aigcspace_test",
    tuning: dict[str, str] | None = None,
    extra_env: dict[str, dict[str, str]] | None = None,
) -> Iterator[System]:
    """The whole system up for the duration of the block: scratch database, redis-server and every
    process; everything stopped, dropped and removed afterwards. `extra_env` is per process name."""
    secrets_env = make_secrets_env()
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix.replace('_', '-')}-"))
    try:
        with (
            scratch_database(prefix=prefix, secrets_env=secrets_env) as database,
            private_redis(workdir) as redis,
        ):
            env = build_system_env(database=database, redis=redis, secrets_env=secrets_env, tuning=tuning)
            system = System.from_env(env=env, workdir=workdir, redis=redis, database=database)
            try:
                system.start_all(extra_env)
                yield system
            finally:
                system.stop_all()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- Resource figures of running processes ------------------------------------------------------------


@dataclass
class ProcessUsage:
    """What one process used over a sampled window."""

    peak_rss_mib: float
    cpu_seconds: float


# Besides the named processes, each window reports these two, CPU only (their peak RSS is NaN):
POSTGRES = "postgres*"  # every PostgreSQL server process on the machine (the server is shared)
MACHINE = "machine*"  # every process on the machine: up to 100 % per core


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of each PostgreSQL server process, by pid."""
    used: dict[int, float] = {}
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                used[process.pid] = times.user + times.system
    return used


def _postgres_delta(start: dict[int, float]) -> float:
    """CPU seconds PostgreSQL used since `start` (a backend that exited meanwhile is not counted)."""
    return sum(seconds - start.get(pid, 0.0) for pid, seconds in _postgres_cpu().items())


def _machine_cpu() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


class ResourceSampler:
    """Samples each process's resident memory every `interval` seconds on a background thread, for the
    peak; CPU seconds are read at the start and the end of each window. Children are counted with their
    parent (a server with worker processes is one entry), except for the sampling process itself, whose
    children are the processes it started. PostgreSQL and the whole machine are added (CPU only), to
    show whether the database or the machine was the limit."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        self.interval = interval
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._peak: dict[str, int] = {}
        self._cpu_start: dict[str, float] = {}
        self._postgres_start: dict[int, float] = {}
        self._machine_start = 0.0
        self._window_start = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)

    def __enter__(self) -> ResourceSampler:
        self.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Begin a new window: peaks from now on, CPU from now on."""
        with self._lock:
            self._peak = {name: self._rss(process) for name, process in self._processes.items()}
            self._cpu_start = {name: self._cpu(process) for name, process in self._processes.items()}
            self._postgres_start = _postgres_cpu()
            self._machine_start = _machine_cpu()
            self._window_start = time.monotonic()

    def window(self) -> tuple[float, dict[str, ProcessUsage]]:
        """Seconds since the window began, and each process's usage in it."""
        self._sample()
        with self._lock:
            elapsed = time.monotonic() - self._window_start
            usage = {
                name: ProcessUsage(
                    peak_rss_mib=self._peak[name] / 2**20,
                    cpu_seconds=self._cpu(process) - self._cpu_start[name],
                )
                for name, process in self._processes.items()
            }
            for name, seconds in (
                (POSTGRES, _postgres_delta(self._postgres_start)),
                (MACHINE, _machine_cpu() - self._machine_start),
            ):
                usage[name] = ProcessUsage(peak_rss_mib=math.nan, cpu_seconds=seconds)
        return elapsed, usage

    def _run(self) -> None:
        # Bounded by the stop event; one sample per interval.
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        with self._lock:
            for name, process in self._processes.items():
                self._peak[name] = max(self._peak.get(name, 0), self._rss(process))

    @staticmethod
    def _family(process: psutil.Process) -> list[psutil.Process]:
        if process.pid == os.getpid():
            return [process]
        try:
            return [process, *process.children(recursive=True)]
        except psutil.Error:
            return [process]

    @classmethod
    def _rss(cls, process: psutil.Process) -> int:
        total = 0
        for member in cls._family(process):
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
        return total

    @classmethod
    def _cpu(cls, process: psutil.Process) -> float:
        total = 0.0
        for member in cls._family(process):
            with contextlib.suppress(psutil.Error):
                times = member.cpu_times()
                total += times.user + times.system
        return total
