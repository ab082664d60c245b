"""`/api/auth`: register and log in (the only /api routes that need no token)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from shared.envelope import ApiResponse, envelope

from gateway.auth.schemas import LoginRequest, RegisterRequest, TokenResponse
from gateway.dependencies import AuthServiceDep
from gateway.users.schemas import UserResponse

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/register", status_code=201, response_model=ApiResponse[UserResponse])
async def register(body: RegisterRequest, auth: AuthServiceDep) -> JSONResponse:
    """Create an account; 409 when the username is taken."""
    user = await auth.register(username=body.username, password=body.password)
    return envelope(user, status=201)


@router.post("/login", response_model=ApiResponse[TokenResponse])
async def login(body: LoginRequest, auth: AuthServiceDep) -> JSONResponse:
    """Exchange username and password for a bearer token."""
    return envelope(await auth.login(username=body.username, password=body.password))
