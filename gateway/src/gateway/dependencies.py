"""The gateway's `Annotated` dependencies: settings, the caller, and the services endpoints use.

All are `async def`, even those that never wait: FastAPI runs a plain `def` dependency in a worker
thread, a thread hop per request for nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from shared.dependencies import SessionDep
from shared.errors import Unauthorized
from shared.models import User
from shared.security import ApiKeyCipher

from gateway.auth.passwords import PasswordHashing
from gateway.auth.service import AuthService
from gateway.auth.throttle import LoginThrottle
from gateway.auth.tokens import INVALID_TOKEN, AccessTokens
from gateway.config import GatewaySettings
from gateway.users.repository import UserRepository
from gateway.users.service import UserService


async def get_settings_dep(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def get_cipher(request: Request) -> ApiKeyCipher:
    cipher: ApiKeyCipher = request.app.state.cipher
    return cipher


async def get_access_tokens(request: Request) -> AccessTokens:
    tokens: AccessTokens = request.app.state.access_tokens
    return tokens


async def get_login_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


async def get_password_hashing(request: Request) -> PasswordHashing:
    hashing: PasswordHashing = request.app.state.password_hashing
    return hashing


SettingsDep = Annotated[GatewaySettings, Depends(get_settings_dep)]
CipherDep = Annotated[ApiKeyCipher, Depends(get_cipher)]
PasswordHashingDep = Annotated[PasswordHashing, Depends(get_password_hashing)]
AccessTokensDep = Annotated[AccessTokens, Depends(get_access_tokens)]
LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]


async def get_user_repository(session: SessionDep) -> UserRepository:
    return UserRepository(session)


UserRepositoryDep = Annotated[UserRepository, Depends(get_user_repository)]


async def get_current_user(request: Request, tokens: AccessTokensDep, users: UserRepositoryDep) -> User:
    """The user the bearer token names; 401 when the token is bad or the user is gone or inactive."""
    user_id = tokens.user_id(request.headers.get("authorization"))
    user = await users.get(user_id)
    if user is None or not user.is_active:
        raise Unauthorized(INVALID_TOKEN)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_user_service(users: UserRepositoryDep, cipher: CipherDep) -> UserService:
    return UserService(users=users, cipher=cipher)


async def get_auth_service(
    users: UserRepositoryDep,
    passwords: PasswordHashingDep,
    cipher: CipherDep,
    throttle: LoginThrottleDep,
    settings: SettingsDep,
) -> AuthService:
    return AuthService(
        users=users,
        passwords=passwords,
        cipher=cipher,
        throttle=throttle,
        jwt_secret=settings.jwt_secret,
        expires_in=settings.jwt_expires_seconds,
    )


UserServiceDep = Annotated[UserService, Depends(get_user_service)]
AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]
