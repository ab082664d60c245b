"""The caller's profile and API key: encrypted on the way in, only ever shown as a hint."""

from __future__ import annotations

from shared.models import User
from shared.security import ApiKeyCipher, apikey_hint

from gateway.users.repository import UserRepository
from gateway.users.schemas import UserResponse


def describe_user(user: User, cipher: ApiKeyCipher) -> UserResponse:
    """The public view of a user; a key encrypted under another key counts as no key."""
    plain = cipher.decrypt(user.apikey, user_id=user.id) if user.apikey else None
    return UserResponse(
        id=user.id,
        username=user.username,
        has_apikey=plain is not None,
        apikey_hint=apikey_hint(plain) if plain is not None else None,
        created_at=user.created_at,
    )


class UserService:
    """What a logged-in user may change about themselves."""

    def __init__(self, *, users: UserRepository, cipher: ApiKeyCipher) -> None:
        self.users = users
        self.cipher = cipher

    def describe(self, user: User) -> UserResponse:
        return describe_user(user, self.cipher)

    async def set_apikey(self, *, user: User, apikey: str) -> UserResponse:
        await self.users.set_apikey(user, self.cipher.encrypt(apikey))
        return self.describe(user)

    async def delete_apikey(self, *, user: User) -> UserResponse:
        await self.users.set_apikey(user, None)
        return self.describe(user)
