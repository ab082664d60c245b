"""The llm-service application."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from shared.app import create_service_app
from shared.internal_http import InternalClient

from llm_service.config import LlmServiceSettings, get_settings
from llm_service.outbox import CompletionRecorder, OutboxRelay
from llm_service.routers import llm_router
from llm_service.services.conversation_client import ConversationClient
from llm_service.services.dashscope_client import DashScopeClient
from llm_service.services.llm_service import CLEANUP_SECONDS
from llm_service.services.model_cache import ModelCache
from shared import service_names

logger = logging.getLogger("llm_service")

SERVICE_NAME = service_names.LLM_SERVICE
# Calls to conversation-service are short (an owner check, a creation); a burst of chats queues for
# these connections here rather than opening a socket each and queueing inside conversation-service.
CONVERSATION_SERVICE_CONNECTIONS = 64


def create_app(settings: LlmServiceSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    async def on_startup(app: FastAPI) -> None:
        # The SDK logs every failed request with a traceback; we log each failure once, ourselves.
        logging.getLogger("dashscope").setLevel(logging.CRITICAL)
        app.state.cipher = settings.apikey_cipher()
        app.state.models = ModelCache(app.state.session_factory, ttl=settings.model_cache_ttl_s)
        app.state.dashscope = DashScopeClient(
            base_url=settings.dashscope_base_url,
            connect_timeout=settings.dashscope_connect_timeout_s,
            first_token_timeout=settings.dashscope_first_token_timeout_s,
            idle_timeout=settings.dashscope_idle_timeout_s,
            request_timeout=settings.dashscope_request_timeout_s,
            max_connections=settings.dashscope_max_connections,
        )
        app.state.conversations = ConversationClient(
            InternalClient(
                base_url=settings.conversation_service_url,
                audience=service_names.CONVERSATION_SERVICE,
                caller=SERVICE_NAME,
                secret=settings.internal_secret,
                ttl=settings.internal_token_ttl_seconds,
                limit=CONVERSATION_SERVICE_CONNECTIONS,
            )
        )
        relay = OutboxRelay(
            session_factory=app.state.session_factory,
            redis=app.state.redis,
            poll_interval=settings.outbox_poll_interval_s,
            batch_size=settings.outbox_batch_size,
        )
        app.state.recorder = CompletionRecorder(
            session_factory=app.state.session_factory,
            redis=app.state.redis,
            relay=relay,
            in_flight_lease_s=settings.journal_lease_seconds,
            in_flight_renew_s=settings.journal_renew_seconds,
            in_flight_after_s=settings.journal_after_seconds,
        )
        app.state.relay_task = asyncio.create_task(relay.run(), name="llm-outbox-relay")

    async def on_shutdown(app: FastAPI) -> None:
        # Streams cut by the shutdown are still being recorded: Redis and the database stay open for them,
        # and for a last attempt at the events neither would take so far; all within CLEANUP_SECONDS.
        recorder: CompletionRecorder = app.state.recorder
        deadline = asyncio.get_running_loop().time() + CLEANUP_SECONDS
        try:
            async with asyncio.timeout_at(deadline):
                await recorder.drain()
        except TimeoutError:
            logger.error("replies not recorded at shutdown", extra={"replies": recorder.unrecorded})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await recorder.close()  # logs the events it could not record
        app.state.relay_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app.state.relay_task
        await app.state.conversations.close()
        await app.state.dashscope.close()

    app = create_service_app(
        service_name=SERVICE_NAME, settings=settings, on_startup=on_startup, on_shutdown=on_shutdown
    )
    app.include_router(llm_router.router)
    return app
