"""Text PostgreSQL and UTF-8 cannot hold: kept as U+FFFD where it must be stored, refused where it is input."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import AfterValidator, TypeAdapter, ValidationError
from shared.db import storable_text
from shared.schemas import UnicodeText, check_storable


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("plain 中文 😀", "plain 中文 😀"),
        ("a\x00b", "a\ufffdb"),
        ("x\ud800y\udfffz", "x\ufffdy\ufffdz"),
        ("\x00\ud83d", "\ufffd\ufffd"),
        ("", ""),
    ],
)
def test_storable_text_replaces_only_what_cannot_be_stored(text: str, stored: str) -> None:
    assert storable_text(text) == stored
    storable_text(text).encode()  # UTF-8 can hold it


def test_unicode_text_refuses_a_lone_surrogate_and_keeps_the_rest() -> None:
    adapter = TypeAdapter(UnicodeText)
    assert adapter.validate_python("a\x00b 😀") == "a\x00b 😀"
    with pytest.raises(ValidationError, match="lone surrogate"):
        adapter.validate_python("a\udc00b")


def test_storable_text_also_refuses_nul() -> None:
    adapter = TypeAdapter(Annotated[str, AfterValidator(check_storable)])
    assert adapter.validate_python("plain 中文") == "plain 中文"
    with pytest.raises(ValidationError, match="NUL"):
        adapter.validate_python("a\x00b")
    with pytest.raises(ValidationError, match="lone surrogate"):
        adapter.validate_python("a\udc00b")
