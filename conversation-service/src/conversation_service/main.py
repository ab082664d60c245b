"""The conversation-service application: conversation routes and the completion consumer."""

from __future__ import annotations

from fastapi import FastAPI
from shared.app import create_service_app
from shared.consumer_process import consumer_hooks

from conversation_service.config import get_settings
from conversation_service.consumer import GROUP, build_handler, build_housekeeping
from conversation_service.routers import conversation_router
from shared import service_names

SERVICE_NAME = service_names.CONVERSATION_SERVICE


def create_app() -> FastAPI:
    on_startup, on_shutdown = consumer_hooks(
        group=GROUP, build_handler=build_handler, build_housekeeping=build_housekeeping
    )
    app = create_service_app(
        service_name=SERVICE_NAME, settings=get_settings(), on_startup=on_startup, on_shutdown=on_shutdown
    )
    app.include_router(conversation_router.router)
    return app
