"""`/healthz` (alive) and `/readyz` (database and Redis reachable) for every service."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from shared.envelope import envelope
from shared.errors import AppError

router = APIRouter(include_in_schema=False)


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> JSONResponse:
    """Alive: the process answers."""
    return envelope({"status": "ok"})


@router.api_route("/readyz", methods=["GET", "HEAD"])
async def readyz(request: Request) -> JSONResponse:
    """Ready: the database and Redis both answer within a second; a 503 (in the error envelope, with
    `Retry-After`) names what does not."""
    checks = {"database": await _check_database(request), "Redis": await _check_redis(request)}
    unreachable = [name for name, ok in checks.items() if not ok]
    if unreachable:
        raise AppError(503, f"Not ready: {' and '.join(unreachable)} unreachable.")
    return envelope({"status": "ready"})


async def _check_database(request: Request) -> bool:
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        return False
    try:
        async with asyncio.timeout(1.0), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


async def _check_redis(request: Request) -> bool:
    redis = getattr(request.app.state, "redis", None)
    if redis is None:
        return False
    try:
        async with asyncio.timeout(1.0):
            return bool(await redis.ping())
    except Exception:
        return False
