"""The billing-service application: the usage report and the completion consumer that bills calls."""

from __future__ import annotations

from fastapi import FastAPI
from shared.app import create_service_app
from shared.consumer_process import consumer_hooks

from billing_service.config import get_settings
from billing_service.consumer import GROUP, build_handler
from billing_service.routers import billing_router
from shared import service_names

SERVICE_NAME = service_names.BILLING_SERVICE


def create_app() -> FastAPI:
    on_startup, on_shutdown = consumer_hooks(group=GROUP, build_handler=build_handler)
    app = create_service_app(
        service_name=SERVICE_NAME, settings=get_settings(), on_startup=on_startup, on_shutdown=on_shutdown
    )
    app.include_router(billing_router.router)
    return app
