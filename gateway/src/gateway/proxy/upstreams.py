"""The services behind the gateway, each with one pooled aiohttp session for the life of the process."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

from gateway.config import GatewaySettings
from shared import service_names


@dataclass
class Upstream:
    """One service: where it is, the audience its internal credential names, and its pooled session."""

    audience: str
    label: str  # as in "The LLM service is unavailable."
    base_url: str
    read_timeout: float  # the longest silence of a call before it is a 504
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"the {self.audience} session is not started")
        return self._session

    def start(self, settings: GatewaySettings) -> None:
        """Open the pool (in the app's startup, inside the event loop)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0,  # thousands of concurrent streams; the services bound their own load
                keepalive_timeout=settings.upstream_keepalive_seconds,
            ),
            # No total limit (streams last minutes); only a slow connect or a long silence ends a call.
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=settings.upstream_connect_timeout_seconds,
                sock_connect=settings.upstream_connect_timeout_seconds,
                sock_read=self.read_timeout,
            ),
            auto_decompress=False,  # bodies pass through byte for byte, encoding header and all
            cookie_jar=aiohttp.DummyCookieJar(),  # one session serves every user: it must remember nothing
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent"),  # forward the client's own
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass
class Upstreams:
    """The three services the public API reaches through the gateway."""

    llm: Upstream
    conversation: Upstream
    billing: Upstream

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Upstreams:
        data_timeout = settings.upstream_data_read_timeout_seconds
        return cls(
            llm=Upstream(
                service_names.LLM_SERVICE,
                "LLM",
                settings.llm_service_url.rstrip("/"),
                settings.upstream_read_timeout_seconds,
            ),
            conversation=Upstream(
                service_names.CONVERSATION_SERVICE,
                "conversation",
                settings.conversation_service_url.rstrip("/"),
                data_timeout,
            ),
            billing=Upstream(
                service_names.BILLING_SERVICE,
                "billing",
                settings.billing_service_url.rstrip("/"),
                data_timeout,
            ),
        )

    def all(self) -> tuple[Upstream, ...]:
        return (self.llm, self.conversation, self.billing)

    def start(self, settings: GatewaySettings) -> None:
        for upstream in self.all():
            upstream.start(settings)

    async def close(self) -> None:
        for upstream in self.all():
            await upstream.close()
