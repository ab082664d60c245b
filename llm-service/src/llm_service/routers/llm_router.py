"""`/api/llm`: chat (JSON or SSE) and the list of chat models (seed §7)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from shared.envelope import ApiResponse, envelope

from llm_service.dependencies import LlmServiceDep
from llm_service.routers.sse import EventStreamResponse
from llm_service.schemas.llm_schema import ChatRequest, ChatResponse, ModelResponse

router = APIRouter(prefix="/api/llm", tags=["llm"])

CONVERSATION_ID_HEADER = "X-Conversation-Id"


@router.post(
    "/chat",
    response_model=ApiResponse[ChatResponse],
    responses={200: {"content": {"text/event-stream": {}}, "description": "ChatResponse, or SSE frames"}},
)
async def chat(body: ChatRequest, service: LlmServiceDep) -> Response:
    """Chat with a model using your own DashScope key: one JSON reply, or SSE frames with `stream`."""
    if body.stream:
        reply = await service.chat_stream(body)
        return EventStreamResponse(reply.frames, headers={CONVERSATION_ID_HEADER: str(reply.conversation_id)})
    result = await service.chat(body)
    return envelope(result, headers={CONVERSATION_ID_HEADER: str(result.conversation_id)})


@router.get("/models", response_model=ApiResponse[list[ModelResponse]])
async def list_models(service: LlmServiceDep) -> Response:
    """The active chat models (category 0) with their prices per 1,000 tokens."""
    return envelope(await service.list_models())
