"""Directives that tests write into the last user message to script the stand-in's reply."""

from __future__ import annotations

import re
from dataclasses import dataclass

# `[[name]]` or `[[name:value]]`; unknown names are ordinary text.
_DIRECTIVE = re.compile(r"\[\[(tokens|input_tokens|delay_ms|error|midstream_error|stall)(?::([^\[\]]*))?\]\]")

_FILLER = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. "
)


@dataclass(frozen=True, slots=True)
class Directives:
    """What the last user message asks for; None means "not asked"."""

    tokens: int | None = None
    input_tokens: int | None = None
    delay_ms: int | None = None
    error: str | None = None
    midstream_error: str | None = None
    stall: bool = False


def _count(value: str | None) -> int | None:
    """A non-negative count, or None when the value is not one (the directive is then ignored)."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def parse_directives(text: str) -> Directives:
    """Collect the directives found anywhere in `text`; the first occurrence of each wins."""
    found: dict[str, str | None] = {}
    for match in _DIRECTIVE.finditer(text):
        found.setdefault(match.group(1), match.group(2))
    error = (found.get("error") or "").strip() or None
    midstream = (found.get("midstream_error") or "").strip() or None
    return Directives(
        tokens=_count(found.get("tokens")),
        input_tokens=_count(found.get("input_tokens")),
        delay_ms=_count(found.get("delay_ms")),
        error=error,
        midstream_error=midstream,
        stall="stall" in found,
    )


def filler(length: int) -> str:
    """Exactly `length` characters of deterministic filler text."""
    repeats = length // len(_FILLER) + 1
    return (_FILLER * repeats)[:length]
