"""The conversation-service application: conversation routes and the completion consumer."""

from __future__ import annotations

from fastapi import FastAPI
from shared.app import create_service_app
from shared.consumer_process import consumer_hooks

from conversation_service.config import ConversationServiceSettings, get_settings
from conversation_service.consumer import CONSUMER
from conversation_service.routers import conversation_router
from shared import service_names

SERVICE_NAME = service_names.CONVERSATION_SERVICE


def create_app(settings: ConversationServiceSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    on_startup, on_shutdown = consumer_hooks(CONSUMER, settings)
    app = create_service_app(
        service_name=SERVICE_NAME, settings=settings, on_startup=on_startup, on_shutdown=on_shutdown
    )
    app.include_router(conversation_router.router)
    return app
