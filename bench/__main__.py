"""`python -m bench [chat|consumers|clients ...]`: run the benchmarks (all of them by default) one after
another, print a table per benchmark and a PASS/FAIL summary of the targets at the end."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Iterator

from bench import chat, clients, consumers
from bench.report import Scorecard
from harness import System, raise_open_file_limit, running_system

BENCHMARKS = ("chat", "consumers", "clients")
NEEDS_SYSTEM = {"chat", "consumers"}


@contextlib.contextmanager
def _system_if(needed: bool) -> Iterator[System | None]:
    """The whole system, started once for every benchmark that needs it, with the services' own
    settings (not the tests' shortened intervals)."""
    if not needed:
        yield None
        return
    started = time.monotonic()
    with running_system(prefix="aigcspace_bench") as system:
        print(f"system up in {time.monotonic() - started:.1f} s (logs in {system.workdir})", flush=True)
        yield system


async def _run(names: list[str], system: System | None, scorecard: Scorecard) -> None:
    for name in names:
        started = time.monotonic()
        print(f"\n=== {name} ===", flush=True)
        try:
            if name == "chat":
                assert system is not None
                await chat.run(system, scorecard)
            elif name == "consumers":
                assert system is not None
                await consumers.run(system, scorecard)
            else:
                await clients.run(scorecard)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            print(f"{name} failed: {type(exc).__name__}: {exc}", flush=True)
            scorecard.add(f"{name} benchmark ran", f"{type(exc).__name__}", False)
        if system is not None:
            for process, code in system.exited().items():
                print(
                    f"\n{process} exited with {code} during {name}; its log ends:\n{system.log(process)[-3000:]}"
                )
        print(f"\n({name}: {time.monotonic() - started:.0f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"one of {', '.join(BENCHMARKS)} (default: all)"
    )
    names = parser.parse_args(argv).names or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    raise_open_file_limit()
    started = time.monotonic()
    print(f"bench on {os.cpu_count()} cores: {', '.join(names)}", flush=True)
    scorecard = Scorecard()
    with _system_if(bool(NEEDS_SYSTEM & set(names))) as system:
        asyncio.run(_run(names, system, scorecard))
    print(scorecard.render())
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
