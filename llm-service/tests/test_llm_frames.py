"""The fast path for plain delta frames writes exactly what the model of a frame would."""

from __future__ import annotations

import pytest
from llm_service.schemas.llm_schema import StreamChunk, delta_frame


@pytest.mark.parametrize(
    "content",
    ["hello", "", 'quote " backslash \\ newline \n tab \t', "\x00\x1f\x7f", "中文 😀 \u2028 </script>"],
)
def test_delta_frame_is_the_stream_chunk_frame(content: str) -> None:
    assert delta_frame(content) == StreamChunk(content=content).to_sse()
