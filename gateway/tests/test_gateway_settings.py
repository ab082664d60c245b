"""Settings: a gateway with a missing, short or reused secret refuses to start, saying why in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gateway.config import GatewaySettings
from pydantic import ValidationError

GOOD = {
    "INTERNAL_SECRET": "i" * 40,
    "JWT_SECRET": "j" * 40,
    "APIKEY_ENCRYPTION_KEY": "k" * 40,
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name in GOOD or name.endswith(("_SERVICE_URL", "_PORT")) or name.startswith(("JWT_", "MAX_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env


def settings(**env: str) -> GatewaySettings:
    values = {**GOOD, **env}
    return GatewaySettings(**{k.lower(): v for k, v in values.items() if v})


def test_defaults(clean_env: None) -> None:
    s = settings()
    assert s.listen_port == 8000
    assert s.jwt_expires_seconds == 86400
    assert s.llm_service_url == "http://127.0.0.1:8001"
    assert s.conversation_service_url == "http://127.0.0.1:8002"
    assert s.billing_service_url == "http://127.0.0.1:8003"
    assert s.max_body_bytes == 1024 * 1024
    assert s.upstream_connect_timeout_seconds == 3


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"JWT_SECRET": ""}, "jwt_secret"),
        ({"JWT_SECRET": "s" * 31}, "jwt_secret"),
        ({"JWT_SECRET": "i" * 40}, "jwt_secret"),  # the same as INTERNAL_SECRET
        ({"APIKEY_ENCRYPTION_KEY": ""}, "apikey_encryption_key"),
        ({"APIKEY_ENCRYPTION_KEY": "k" * 31}, "apikey_encryption_key"),
        ({"DB_POOL_SIZE": "0"}, "db_pool_size"),  # no connection to run a transaction on
        ({"INTERNAL_TOKEN_TTL_SECONDS": "0"}, "internal_token_ttl_seconds"),  # every call would be a 401
    ],
)
def test_weak_secrets_and_bad_values_are_refused(clean_env: None, env: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        settings(**env)
    assert [error["loc"] for error in info.value.errors()] == [(field,)]


def test_the_process_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    short = "short-secret-value"
    env = {k: v for k, v in os.environ.items() if k not in GOOD}
    env.update({"INTERNAL_SECRET": "i" * 40, "APIKEY_ENCRYPTION_KEY": "k" * 40, "JWT_SECRET": short})
    result = subprocess.run(
        [sys.executable, "-m", "gateway"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "JWT_SECRET" in lines[0] and "refusing to start" in lines[0]
    assert short not in result.stderr
