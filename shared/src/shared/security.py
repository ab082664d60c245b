"""Password hashing (argon2id) and encryption of users' DashScope API keys at rest."""

from __future__ import annotations

import base64
import hashlib
import logging
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

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


class ApiKeyCipher:
    """Fernet (AES-128-CBC + HMAC) with a key derived from APIKEY_ENCRYPTION_KEY."""

    def __init__(self, secret: str) -> None:
        derived = hashlib.sha256(b"aigcspace-apikey:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

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
                "a stored DashScope key cannot be decrypted (APIKEY_ENCRYPTION_KEY changed, or the value "
                "is damaged): it counts as not set until its user sets it again",
                extra={"user_id": user_id},
            )
            return None


def apikey_hint(apikey: str) -> str:
    """`sk-…3f9a`: the well-known prefix and the last 4 characters, nothing else of the key."""
    prefix = "sk-" if apikey.startswith("sk-") and len(apikey) > 7 else ""
    return f"{prefix}…{apikey[-4:]}"
