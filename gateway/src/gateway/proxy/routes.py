"""Which public paths go to which service; path and query are forwarded unchanged."""

from __future__ import annotations

from starlette.routing import Route

from gateway.auth.status import ActiveUsers
from gateway.auth.tokens import AccessTokens
from gateway.config import GatewaySettings
from gateway.proxy.handler import ProxyEndpoint
from gateway.proxy.upstreams import Upstream, Upstreams

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def proxy_routes(
    upstreams: Upstreams, *, settings: GatewaySettings, access_tokens: AccessTokens, active_users: ActiveUsers
) -> list[Route]:
    """Plain Starlette routes (no FastAPI request parsing); a wrong method is a 405 from the router."""

    def endpoint(upstream: Upstream) -> ProxyEndpoint:
        return ProxyEndpoint(
            upstream, settings=settings, access_tokens=access_tokens, active_users=active_users
        )

    llm, conversation, billing = (endpoint(u) for u in upstreams.all())
    return [
        Route("/api/llm/{path:path}", llm, methods=METHODS, include_in_schema=False),
        Route("/api/conversations", conversation, methods=METHODS, include_in_schema=False),
        Route("/api/conversations/{path:path}", conversation, methods=METHODS, include_in_schema=False),
        Route("/api/billing/{path:path}", billing, methods=METHODS, include_in_schema=False),
    ]
