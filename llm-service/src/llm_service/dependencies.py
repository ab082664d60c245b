"""Annotated dependencies of llm-service's endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from shared.dependencies import CurrentUserId

from llm_service.services.client_watch import request_disconnected
from llm_service.services.llm_service import LlmService


async def get_llm_service(request: Request, user_id: CurrentUserId) -> LlmService:
    """The chat service acting for the caller the internal credential names."""
    state = request.app.state
    return LlmService(
        sessions=state.session_factory,
        user_id=user_id,
        dashscope=state.dashscope,
        conversations=state.conversations,
        recorder=state.recorder,
        cipher=state.cipher,
        models=state.models,
        disconnected=request_disconnected(request.receive),
    )


LlmServiceDep = Annotated[LlmService, Depends(get_llm_service)]
