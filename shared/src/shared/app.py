"""The one way every backend service is assembled: logging, envelope errors, health, DB and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.db import create_engine, create_session_factory
from shared.errors import install_error_handlers
from shared.health import router as health_router
from shared.logging import RequestLogMiddleware, configure_logging
from shared.messaging import connect_redis
from shared.settings import BaseServiceSettings

Hook = Callable[[FastAPI], Awaitable[None]]


def create_service_app(
    *,
    service_name: str,
    settings: BaseServiceSettings,
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    title: str | None = None,
    middleware: Sequence[Middleware] = (),
    api_docs: bool = True,
) -> FastAPI:
    """A FastAPI app with `app.state.{settings, engine, session_factory, redis, service_name}` ready.

    `on_startup` runs after the engine and Redis exist (start consumers and clients there);
    `on_shutdown` runs before they are closed. `middleware` runs inside the request log, outermost
    first, so what it answers is logged and carries the request id. `api_docs` serves `/docs`, `/redoc`
    and `/openapi.json` (FastAPI's own, not in the envelope).
    """
    configure_logging(service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        app.state.session_factory = create_session_factory(app.state.engine)
        app.state.redis = connect_redis(settings.redis_url)
        try:
            if on_startup is not None:
                await on_startup(app)
            yield
        finally:
            if on_shutdown is not None:
                await on_shutdown(app)
            await app.state.redis.aclose()
            await app.state.engine.dispose()

    app = FastAPI(
        title=title or service_name,
        lifespan=lifespan,
        docs_url="/docs" if api_docs else None,
        redoc_url="/redoc" if api_docs else None,
        openapi_url="/openapi.json" if api_docs else None,
    )
    # An API path is exact: `/api/conversations/` is a 404 in the envelope, not a redirect.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.service_name = service_name
    install_error_handlers(app)
    app.include_router(health_router)
    app.add_middleware(HeadAsGet, router=app.router)
    for item in reversed(middleware):  # each added one becomes the outermost so far
        app.add_middleware(item.cls, *item.args, **item.kwargs)
    app.add_middleware(RequestLogMiddleware)
    return app


class HeadAsGet:
    """HEAD on a GET route is answered as GET, without the body (HTTP asks a server that answers GET to
    answer HEAD; FastAPI's routes take only the methods they name). A route with a HEAD of its own (the
    owner check on a conversation, `/healthz`) keeps it. uvicorn leaves the body out, as it still sees
    the request's own method."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD" and not self._takes_head(scope):
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send)

    def _takes_head(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] == Match.FULL for route in self.router.routes)
