"""Proxy client comparison: a bare one-hop proxy (bench/proxy_app.py) forwarding the stand-in's SSE with
aiohttp and with httpx's pooled AsyncClient, at 1, 50 and 200 paced streams: the time each adds to the
first byte, and the CPU the proxy spends per stream. This is what the gateway's choice of client rests on.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.calls import native_call, prompt
from bench.chat import SEND_FOR_S
from bench.load import LevelResult, new_session, run_level
from bench.report import Scorecard, ms, signed_ms, table
from harness import LOCALHOST, MACHINE, ROOT, ResourceSampler, free_port, spawn, stop_process, wait_http

CLIENTS = ("aiohttp", "httpx")
LEVELS = ((1, 10), (50, 150), (200, 400))  # (concurrency, paced streams)
LEVEL_TIMEOUT_S = 120.0


@contextlib.contextmanager
def _processes() -> Iterator[dict[str, tuple[str, int]]]:
    """A stand-in and one proxy per client in front of it: name → (base URL, pid)."""
    workdir = Path(tempfile.mkdtemp(prefix="aigcspace-bench-clients-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "STANDIN_"))}
    base_env |= {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    ports = {name: free_port() for name in ("stand-in", *CLIENTS)}
    standin = f"http://{LOCALHOST}:{ports['stand-in']}"
    running: dict[str, subprocess.Popen[bytes]] = {}
    try:
        running["stand-in"] = spawn(
            "dashscope_standin",
            env={**base_env, "STANDIN_PORT": str(ports["stand-in"])},
            workdir=workdir,
            log_name="standin",
        )
        for client in CLIENTS:
            env = {
                **base_env,
                "BENCH_PROXY_CLIENT": client,
                "BENCH_PROXY_PORT": str(ports[client]),
                "BENCH_PROXY_UPSTREAM": standin,
            }
            running[client] = spawn("bench.proxy_app", env=env, workdir=workdir, log_name=f"proxy-{client}")
        urls = {name: f"http://{LOCALHOST}:{port}" for name, port in ports.items()}
        for name, process in running.items():
            wait_http(urls[name] + "/healthz", timeout=60, process=process)
        yield {name: (urls[name], process.pid) for name, process in running.items()}
    finally:
        for process in running.values():
            stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)


async def run(scorecard: Scorecard) -> None:
    """Each level straight to the stand-in and through each proxy; print added TTFB and proxy CPU."""
    cpu_per_stream: dict[tuple[int, str], float] = {}
    with _processes() as processes:
        pids = {name: pid for name, (_, pid) in processes.items()} | {"bench": os.getpid()}
        content = prompt(tokens=80, paced=True)
        async with new_session() as session:
            for url, _ in processes.values():  # the first calls pay for imports and connections
                warm = native_call(url, prompt(tokens=8, paced=False), stream=True)
                await run_level(session, warm, concurrency=1, count=5, timeout=LEVEL_TIMEOUT_S)
            with ResourceSampler(pids) as sampler:
                for concurrency, count in LEVELS:
                    rows = []
                    direct: LevelResult | None = None
                    for name, (url, _) in processes.items():
                        call = native_call(url, content, stream=True)
                        sampler.reset()
                        result = await run_level(
                            session,
                            call,
                            concurrency=concurrency,
                            count=count,
                            timeout=LEVEL_TIMEOUT_S,
                            send_for=SEND_FOR_S,
                        )
                        _, usage = sampler.window()
                        direct = direct or result
                        proxy_cpu = usage[name].cpu_seconds if name in CLIENTS else math.nan
                        per_stream = proxy_cpu / len(result.ok) if result.ok else math.nan
                        cpu_per_stream[(concurrency, name)] = per_stream
                        rows.append(
                            (
                                "direct" if name == "stand-in" else f"proxy ({name})",
                                len(result.samples),
                                result.errors,
                                ms(result.ttfb(50)),
                                ms(result.ttfb(99)),
                                signed_ms(result.ttfb(50) - direct.ttfb(50)),
                                f"{result.per_second:.1f}",
                                "-" if math.isnan(proxy_cpu) else f"{proxy_cpu:.2f}",
                                ms(per_stream),
                                f"{100 * usage['stand-in'].cpu_seconds / result.wall:.0f}",
                                f"{100 * usage[MACHINE].cpu_seconds / result.wall:.0f}",
                            )
                        )
                    print(
                        table(
                            f"Bare proxy, {concurrency} paced streams (ms)",
                            [
                                "path",
                                "calls",
                                "errors",
                                "TTFB p50",
                                "TTFB p99",
                                "+TTFB p50",
                                "streams/s",
                                "proxy CPU s",
                                "CPU ms/stream",
                                "stand-in CPU%",
                                "machine CPU%",
                            ],
                            rows,
                        ),
                        flush=True,
                    )
    a, h = cpu_per_stream.get((50, "aiohttp"), math.nan), cpu_per_stream.get((50, "httpx"), math.nan)
    scorecard.add(
        "proxy client: aiohttp cheaper than httpx at 50 paced streams",
        f"{ms(a)} vs {ms(h)} ms CPU/stream",
        None if math.isnan(a) or math.isnan(h) else a < h,
    )
