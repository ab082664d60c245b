"""Settings of llm-service: values that would break a promise of CONTRACT.md are refused at start."""

from __future__ import annotations

import pytest
from llm_service.config import LlmServiceSettings
from pydantic import ValidationError

SECRETS = {"internal_secret": "i" * 40, "apikey_encryption_key": "k" * 40}


def test_a_model_switched_off_is_refused_within_a_minute() -> None:
    assert LlmServiceSettings(**SECRETS, model_cache_ttl_s=60).model_cache_ttl_s == 60
    with pytest.raises(ValidationError) as info:
        LlmServiceSettings(**SECRETS, model_cache_ttl_s=61)
    assert [error["loc"] for error in info.value.errors()] == [("model_cache_ttl_s",)]
