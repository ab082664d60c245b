"""The gateway application: accounts, the proxy to the services, and the chat UI."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from shared.app import create_service_app
from starlette.middleware import Middleware
from starlette.staticfiles import StaticFiles

from gateway.auth.passwords import PasswordHashing
from gateway.auth.router import router as auth_router
from gateway.auth.status import ActiveUsers
from gateway.auth.throttle import LoginThrottle
from gateway.auth.tokens import AccessTokens
from gateway.body_limit import BodyLimitMiddleware
from gateway.config import GatewaySettings, get_settings
from gateway.proxy.routes import proxy_routes
from gateway.proxy.upstreams import Upstreams
from gateway.users.router import router as users_router
from shared import service_names

SERVICE_NAME = service_names.GATEWAY
UI_DIR = Path(__file__).resolve().parent / "ui" / "static"


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    upstreams = Upstreams.from_settings(settings)
    active_users = ActiveUsers(ttl=settings.user_status_cache_seconds)
    access_tokens = AccessTokens(settings.jwt_secret)

    async def on_startup(app: FastAPI) -> None:
        active_users.bind(app.state.session_factory)
        app.state.password_hashing = PasswordHashing(concurrency=settings.password_hash_concurrency)
        app.state.login_throttle = LoginThrottle(
            app.state.redis,
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_failure_window_seconds,
        )
        upstreams.start(settings)

    async def on_shutdown(app: FastAPI) -> None:
        await upstreams.close()

    app = create_service_app(
        service_name=SERVICE_NAME,
        settings=settings,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        middleware=[Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)],
        # The public API is documented in the README and answers in the envelope only; FastAPI's pages
        # would show just the gateway's own routes (not the proxied ones) and load scripts from a CDN.
        api_docs=False,
    )
    app.state.cipher = settings.apikey_cipher()
    app.state.access_tokens = access_tokens
    app.state.upstreams = upstreams
    # The proxy's routes come first: they are the hot path, matched before any other.
    app.router.routes[0:0] = proxy_routes(
        upstreams, settings=settings, access_tokens=access_tokens, active_users=active_users
    )
    app.include_router(auth_router)
    app.include_router(users_router)
    _mount_ui(app)
    return app


def _mount_ui(app: FastAPI) -> None:
    """The chat UI: `index.html` at `/`, the rest of `ui/static/` under `/static/`."""
    index = UI_DIR / "index.html"
    if not index.is_file():
        return

    @app.get("/", include_in_schema=False)
    async def ui_index() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=UI_DIR), name="static")
