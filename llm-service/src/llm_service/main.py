"""The llm-service application."""

from __future__ import annotations

from fastapi import FastAPI
from shared.app import create_service_app

from llm_service.config import get_settings

SERVICE_NAME = "llm-service"


def create_app() -> FastAPI:
    return create_service_app(service_name=SERVICE_NAME, settings=get_settings())
