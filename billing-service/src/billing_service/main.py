"""The billing-service application: the usage report and the completion consumer that bills calls."""

from __future__ import annotations

from fastapi import FastAPI
from shared.app import create_service_app
from shared.consumer_process import consumer_hooks

from billing_service.config import BillingServiceSettings, get_settings
from billing_service.consumer import CONSUMER
from billing_service.routers import billing_router
from shared import service_names

SERVICE_NAME = service_names.BILLING_SERVICE


def create_app(settings: BillingServiceSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    on_startup, on_shutdown = consumer_hooks(CONSUMER, settings)
    app = create_service_app(
        service_name=SERVICE_NAME, settings=settings, on_startup=on_startup, on_shutdown=on_shutdown
    )
    app.include_router(billing_router.router)
    return app
