"""The chat benchmark's figures: the tables printed per concurrency level, and its targets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.calls import PATHS
from bench.load import LevelResult
from bench.report import Scorecard, mib, ms, signed_ms, table
from harness import ProcessUsage

MEMORY_LIMIT_MIB = 150.0
STANDIN_CPU_LIMIT = 80.0  # % of one core: above it the stand-in, not the system, would set the pace


@dataclass
class RunFigures:
    """One path at one concurrency and pacing: the calls, and what each process used meanwhile."""

    result: LevelResult
    usage: dict[str, ProcessUsage]
    window: float  # seconds the usage was sampled over
    shared: bool = False  # the paths ran interleaved: `usage` covers all of them together

    def cpu_percent(self, process: str) -> float:
        return 100 * self.usage[process].cpu_seconds / self.window if self.window else math.nan


@dataclass
class ChatFigures:
    """Everything measured, keyed by (concurrency, pacing, path)."""

    runs: dict[tuple[int, str, str], RunFigures] = field(default_factory=dict)
    peak_rss: dict[str, float] = field(default_factory=dict)
    non_stream: dict[str, LevelResult] = field(default_factory=dict)

    def note_peaks(self, usage: dict[str, ProcessUsage]) -> None:
        for name, used in usage.items():
            if not math.isnan(used.peak_rss_mib):  # CPU-only entries have no memory figure
                self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), used.peak_rss_mib)


def level_tables(figures: ChatFigures, c: int, pacings: list[str]) -> str:
    """Per path: latency and rate; per hop: what it adds; per process: memory and CPU."""
    rows = []
    for pacing in pacings:
        for path in PATHS:
            r = figures.runs[(c, pacing, path)].result
            rows.append(
                (
                    path,
                    pacing,
                    len(r.samples),
                    r.errors,
                    ms(r.ttfb(50)),
                    ms(r.ttfb(99)),
                    ms(r.total(50)),
                    ms(r.total(99)),
                    f"{r.per_second:.1f}",
                )
            )
    out = [
        table(
            f"Chat streams, {c} concurrent (ms)",
            [
                "path",
                "pacing",
                "calls",
                "errors",
                "TTFB p50",
                "TTFB p99",
                "whole p50",
                "whole p99",
                "streams/s",
            ],
            rows,
        )
    ]
    added = []
    for pacing in pacings:
        for label, path, base in (
            ("gateway hop (gateway - llm-service)", "gateway", "llm-service"),
            ("llm-service (llm-service - stand-in)", "llm-service", "stand-in"),
            ("whole system (gateway - stand-in)", "gateway", "stand-in"),
        ):
            r, b = figures.runs[(c, pacing, path)].result, figures.runs[(c, pacing, base)].result
            ratio = r.per_second / b.per_second if b.per_second else math.nan
            added.append(
                (
                    label,
                    pacing,
                    signed_ms(r.ttfb(50) - b.ttfb(50)),
                    signed_ms(r.ttfb(99) - b.ttfb(99)),
                    signed_ms(r.total(50) - b.total(50)),
                    f"{ratio:.2f}",
                )
            )
    out.append(
        table(
            f"Added latency and throughput ratio, {c} concurrent (ms)",
            ["hop", "pacing", "+TTFB p50", "+TTFB p99", "+whole p50", "streams/s ratio"],
            added,
        )
    )
    out.append(_process_table(figures, c, pacings[0]))
    return "\n".join(out)


def _process_table(figures: ChatFigures, c: int, pacing: str) -> str:
    """Memory and CPU per process; when the paths ran one after another, also each process's CPU per
    stream through the gateway (what a chat costs the whole system, process by process)."""
    runs = {path: figures.runs[(c, pacing, path)] for path in PATHS}
    gateway = runs["gateway"]
    columns = {"all paths, interleaved": gateway} if gateway.shared else runs
    per_stream = not gateway.shared and len(gateway.result.samples) > 0
    rows = [
        (
            name,
            mib(max(run.usage[name].peak_rss_mib for run in runs.values())),
            *(f"{run.cpu_percent(name):.0f}" for run in columns.values()),
            *(
                [f"{1000 * gateway.usage[name].cpu_seconds / len(gateway.result.samples):.1f}"]
                if per_stream
                else []
            ),
        )
        for name in gateway.usage
    ]
    return table(
        f"Processes, {c} concurrent, {pacing} (CPU % of one core during each path's run)",
        [
            "process",
            "peak RSS MiB",
            *(f"CPU% {column}" for column in columns),
            *(["CPU ms per gateway stream"] if per_stream else []),
        ],
        rows,
    )


def non_stream_table(figures: ChatFigures) -> str:
    rows = [
        (path, len(r.samples), r.errors, ms(r.total(50)), ms(r.total(99)), f"{r.per_second:.1f}")
        for path, r in figures.non_stream.items()
    ]
    return table(
        "Non-stream chats, 20 concurrent (ms)", ["path", "calls", "errors", "p50", "p99", "requests/s"], rows
    )


def peak_table(figures: ChatFigures) -> str:
    rows = [
        (name, f"{peak:.0f}", "OVER" if peak >= MEMORY_LIMIT_MIB and name != "bench" else "")
        for name, peak in figures.peak_rss.items()
    ]
    return table(
        "Peak RSS over the whole chat benchmark (MiB)", ["process", "peak RSS MiB", "over limit"], rows
    )


def score(figures: ChatFigures, scorecard: Scorecard) -> None:
    def run(c: int, path: str) -> LevelResult | None:
        found = figures.runs.get((c, "paced", path))
        return found.result if found else None

    for base, label in (("llm-service", "gateway hop"), ("stand-in", "whole system")):
        one_gw, one_base = run(1, "gateway"), run(1, base)
        if one_gw and one_base:
            added = one_gw.ttfb(50) - one_base.ttfb(50)
            scorecard.add(
                f"1 stream: {label} adds <= 3 ms to TTFB p50",
                f"{signed_ms(added)} ms",
                added <= 0.003,
            )
        gw, b = run(200, "gateway"), run(200, base)
        if gw and b:
            ratio = gw.per_second / b.per_second if b.per_second else 0.0
            scorecard.add(
                f"200 paced: {label} >= 90 % of direct streams/s",
                f"{ratio * 100:.0f} %",
                ratio >= 0.9 and gw.errors == 0,
            )
            added = gw.ttfb(50) - b.ttfb(50)
            scorecard.add(
                f"200 paced: {label} adds <= 10 ms to TTFB p50", f"{signed_ms(added)} ms", added <= 0.010
            )
    big = run(1000, "gateway")
    if big:
        scorecard.add(
            "1,000 paced streams through the gateway, no error", f"{big.errors} errors", big.errors == 0
        )
    services = {k: v for k, v in figures.peak_rss.items() if k not in ("bench", "redis")}
    if services:
        name, peak = max(services.items(), key=lambda item: item[1])
        scorecard.add(
            f"every process < {MEMORY_LIMIT_MIB:.0f} MiB peak RSS",
            f"max {peak:.0f} MiB ({name})",
            peak < MEMORY_LIMIT_MIB,
        )
    standin = [
        (run_figures.cpu_percent("standin"), key)
        for key, run_figures in figures.runs.items()
        if key[2] == "gateway"
    ]
    if standin:
        worst, key = max(standin)
        scorecard.add(
            "stand-in not the bottleneck (< 80 % CPU in gateway runs)",
            f"max {worst:.0f} % ({key[0]} {key[1]})",
            worst < STANDIN_CPU_LIMIT,
        )
