"""Percentiles, plain-text tables and the PASS/FAIL list every benchmark adds its targets to."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    if math.isinf(seconds):
        return "timeout"
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def mib(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def signed_ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:+.1f}"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A fixed-width table with a title line, first column left-aligned, the rest right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([f"\n{title}", line(cells[0]), rule, *(line(row) for row in cells[1:])])


@dataclass(frozen=True)
class Check:
    """One target and whether this run met it."""

    target: str
    measured: str
    passed: bool | None  # None: could not be measured


@dataclass
class Scorecard:
    """The targets of every benchmark that ran, printed together at the end."""

    checks: list[Check] = field(default_factory=list)

    def add(self, target: str, measured: str, passed: bool | None) -> None:
        self.checks.append(Check(target, measured, passed))

    def render(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}
        rows = [(c.target, c.measured, verdict[c.passed]) for c in self.checks]
        return table("Summary", ["target", "measured", "result"], rows)
