"""Registration and login: argon2 hashes, one answer for every failed login."""

from __future__ import annotations

from shared.errors import AppError, Unauthorized
from shared.security import ApiKeyCipher
from shared.tokens import create_access_token
from sqlalchemy.exc import IntegrityError

from gateway.auth.passwords import PasswordHashing
from gateway.auth.schemas import TokenResponse, could_be_password, could_be_username
from gateway.auth.throttle import LoginThrottle
from gateway.users.repository import UserRepository
from gateway.users.schemas import UserResponse
from gateway.users.service import describe_user

USERNAME_TAKEN = "This username is already taken."
BAD_CREDENTIALS = "Invalid username or password."


class AuthService:
    """Creates accounts and exchanges credentials for access tokens."""

    def __init__(
        self,
        *,
        users: UserRepository,
        passwords: PasswordHashing,
        cipher: ApiKeyCipher,
        throttle: LoginThrottle,
        jwt_secret: str,
        expires_in: int,
    ) -> None:
        self.users = users
        self.passwords = passwords
        self.throttle = throttle
        self.cipher = cipher
        self._jwt_secret = jwt_secret
        self.expires_in = expires_in

    async def register(self, *, username: str, password: str) -> UserResponse:
        """A new user; 409 when the name is taken, also when two registrations race for it."""
        if await self.users.username_taken(username):
            raise AppError(409, USERNAME_TAKEN)
        password_hash = await self.passwords.hash(password)
        try:
            user = await self.users.add(username=username, password_hash=password_hash)
        except IntegrityError as exc:
            raise AppError(409, USERNAME_TAKEN) from exc
        return describe_user(user, self.cipher)

    async def login(self, *, username: str, password: str) -> TokenResponse:
        """A token for valid credentials of an active user; one message for every kind of refusal; 429
        once the name has had too many failures (`LoginThrottle`)."""
        await self.throttle.attempt(username)
        # Credentials registration would refuse are nobody's: checked against no hash, at the same cost.
        plausible = could_be_username(username) and could_be_password(password)
        user = await self.users.get_by_username(username) if plausible else None
        valid = await self.passwords.verify(
            password if plausible else "", user.password_hash if user else None
        )
        if user is None or not valid or not user.is_active:
            raise Unauthorized(BAD_CREDENTIALS)
        await self.throttle.succeeded(username)
        token = create_access_token(secret=self._jwt_secret, user_id=user.id, expires_in=self.expires_in)
        return TokenResponse(access_token=token, expires_in=self.expires_in)
