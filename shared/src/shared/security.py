"""Password hashing (argon2id) and encryption of users' DashScope API keys at rest."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

_hasher = PasswordHasher()
logger = logging.getLogger("shared.security")


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verifying against this keeps an unknown user as slow as a wrong password."""
    return _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when the password matches; costs the same time when there is no such user."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def _fernet(secret: str) -> Fernet:
    derived = hashlib.sha256(b"aigcspace-apikey:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


class ApiKeyCipher:
    """Fernet (AES-128-CBC + HMAC) with a key derived from APIKEY_ENCRYPTION_KEY.

    Keys are encrypted under the current secret and decrypted under it or any `previous` one, so
    APIKEY_ENCRYPTION_KEY can be replaced without losing the stored keys: `rotate` re-encrypts one
    under the current secret (`python -m shared.bootstrap rekey` does it for every user).
    """

    def __init__(self, secret: str, *, previous: Sequence[str] = ()) -> None:
        self._fernet = MultiFernet([_fernet(secret), *(_fernet(old) for old in previous)])

    def encrypt(self, apikey: str) -> str:
        return self._fernet.encrypt(apikey.encode()).decode()

    def decrypt(self, token: str, *, user_id: int) -> str | None:
        """The plain key, or None when it cannot be decrypted (treated as no key).

        That happens when APIKEY_ENCRYPTION_KEY was changed (a new `.env` against an old database) or
        the stored value is damaged: the user is told to set a key, the operator is told why in the log.
        """
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            logger.warning(
                "a stored DashScope key cannot be decrypted (APIKEY_ENCRYPTION_KEY changed without the "
                "old one in APIKEY_ENCRYPTION_PREVIOUS_KEYS, or the value is damaged): it counts as not "
                "set until its user sets it again",
                extra={"user_id": user_id},
            )
            return None

    def opens(self, token: str) -> bool:
        """Whether `token` was encrypted under one of the secrets (quietly: nothing is logged)."""
        try:
            self._fernet.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """`token` encrypted under the current secret; raises `InvalidToken` when no secret opens it."""
        return self._fernet.rotate(token.encode()).decode()


def apikey_hint(apikey: str) -> str:
    """`sk-…3f9a`: the well-known prefix and the last 4 characters, nothing else of the key."""
    prefix = "sk-" if apikey.startswith("sk-") and len(apikey) > 7 else ""
    return f"{prefix}…{apikey[-4:]}"
