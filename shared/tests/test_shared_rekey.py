"""Replacing APIKEY_ENCRYPTION_KEY without losing the stored DashScope keys (`bootstrap rekey`)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError
from shared.demo_data import DEMO_APIKEY, DEMO_USERNAME, load_demo_data
from shared.security import ApiKeyCipher
from shared.settings import ApiKeySettings, settings_error_line

from testkit import ScratchDatabase

ROOT = Path(__file__).resolve().parents[2]
OLD = "the-apikey-encryption-key-before-the-rotation-0123"


def _user_with_key(database: ScratchDatabase, stored: str) -> int:
    with database.connect() as conn:
        row = conn.execute(
            "INSERT INTO aigcspace.users (username, password_hash, apikey) VALUES (%s, 'x', %s) RETURNING id",
            (f"rekey_{uuid.uuid4().hex[:10]}", stored),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _stored(database: ScratchDatabase, user_id: int) -> str:
    with database.connect() as conn:
        row = conn.execute("SELECT apikey FROM aigcspace.users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_the_previous_key_still_opens_what_it_encrypted() -> None:
    current = "the-apikey-encryption-key-after-the-rotation-01234"
    old_token = ApiKeyCipher(OLD).encrypt("sk-old")
    cipher = ApiKeyCipher(current, previous=[OLD])
    assert cipher.decrypt(old_token, user_id=1) == "sk-old"
    rotated = cipher.rotate(old_token)
    assert ApiKeyCipher(current).decrypt(rotated, user_id=1) == "sk-old"  # no longer needs the old one
    assert ApiKeyCipher(OLD).decrypt(cipher.encrypt("sk-new"), user_id=1) is None  # new ones: current only


def test_previous_keys_are_secrets_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERNAL_SECRET", "i" * 40)
    monkeypatch.setenv("APIKEY_ENCRYPTION_KEY", "a" * 40)
    monkeypatch.setenv("APIKEY_ENCRYPTION_PREVIOUS_KEYS", f"{OLD}, too-short")
    with pytest.raises(ValidationError) as refused:
        ApiKeySettings(_env_file=None)  # type: ignore[call-arg]
    line = settings_error_line(refused.value)  # what a process says when it refuses to start
    assert line == "invalid settings: APIKEY_ENCRYPTION_PREVIOUS_KEYS must be at least 32 bytes"


def test_rekey_moves_every_readable_key_to_the_current_secret(
    database: ScratchDatabase, secrets_env: dict[str, str]
) -> None:
    current = secrets_env["APIKEY_ENCRYPTION_KEY"]
    under_old = _user_with_key(database, ApiKeyCipher(OLD).encrypt("sk-under-old"))
    under_current = _user_with_key(database, ApiKeyCipher(current).encrypt("sk-under-current"))
    lost = _user_with_key(database, ApiKeyCipher("a-key-nobody-has-any-more-0123456789").encrypt("sk-lost"))
    lost_before = _stored(database, lost)
    env = {
        **os.environ,
        "DATABASE_URL": database.url,
        "APIKEY_ENCRYPTION_KEY": current,
        "APIKEY_ENCRYPTION_PREVIOUS_KEYS": OLD,
    }
    result = subprocess.run(
        [sys.executable, "-m", "shared.bootstrap", "rekey"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stderr  # one key is lost: said, and the exit code says so too
    assert "keys re-encrypted" in result.stdout and "left as they are" in result.stderr
    only_current = ApiKeyCipher(current)
    assert only_current.decrypt(_stored(database, under_old), user_id=under_old) == "sk-under-old"
    assert only_current.decrypt(_stored(database, under_current), user_id=under_current) == "sk-under-current"
    assert _stored(database, lost) == lost_before
    for secret in (OLD, current, "sk-under-old"):
        assert secret not in result.stdout + result.stderr


def test_the_demo_key_follows_a_new_encryption_key(
    database: ScratchDatabase, secrets_env: dict[str, str]
) -> None:
    """A fresh `.env` against an existing dev database: `demo` can still chat after `make dev`."""
    current = secrets_env["APIKEY_ENCRYPTION_KEY"]
    with database.connect() as conn:
        row = conn.execute("SELECT id FROM aigcspace.users WHERE username = %s", (DEMO_USERNAME,)).fetchone()
    assert row is not None
    demo_id = int(row[0])
    url = database.url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(url) as conn:
            load_demo_data(conn, apikey_secret=OLD)
        assert ApiKeyCipher(OLD).decrypt(_stored(database, demo_id), user_id=demo_id) == DEMO_APIKEY
    finally:
        with psycopg.connect(url) as conn:
            load_demo_data(conn, apikey_secret=current)
    assert ApiKeyCipher(current).decrypt(_stored(database, demo_id), user_id=demo_id) == DEMO_APIKEY
