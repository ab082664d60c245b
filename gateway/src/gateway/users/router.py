"""`/api/users/me`: the caller's profile and their DashScope API key."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from shared.envelope import ApiResponse, envelope

from gateway.dependencies import CurrentUser, UserServiceDep
from gateway.users.schemas import ApiKeyUpdate, UserResponse

router = APIRouter(prefix="/api/users", tags=["users"])


@router.get("/me", response_model=ApiResponse[UserResponse])
async def read_me(user: CurrentUser, users: UserServiceDep) -> JSONResponse:
    """The caller, with a hint of their API key (never the key)."""
    return envelope(users.describe(user))


@router.put("/me/apikey", response_model=ApiResponse[UserResponse])
async def set_apikey(body: ApiKeyUpdate, user: CurrentUser, users: UserServiceDep) -> JSONResponse:
    """Set the caller's own DashScope API key, stored encrypted."""
    return envelope(await users.set_apikey(user=user, apikey=body.apikey))


@router.delete("/me/apikey", response_model=ApiResponse[UserResponse])
async def delete_apikey(user: CurrentUser, users: UserServiceDep) -> JSONResponse:
    """Remove the caller's DashScope API key."""
    return envelope(await users.delete_apikey(user=user))
