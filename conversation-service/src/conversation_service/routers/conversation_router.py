"""Conversation routes (seed §7), served at the public paths; the gateway forwards them for the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, Response
from shared.dependencies import CurrentUserId, SessionDep
from shared.envelope import ApiResponse, envelope

from conversation_service.schemas.conversation_schema import (
    ConversationCreate,
    ConversationDetailResponse,
    ConversationResponse,
    ConversationUpdate,
    MessageResponse,
)
from conversation_service.services import conversation_service, message_service

router = APIRouter(prefix="/api/conversations", tags=["conversations"])

TOTAL_COUNT_HEADER = "X-Total-Count"


@router.post("", status_code=201, response_model=ApiResponse[ConversationResponse])
async def create_conversation(
    session: SessionDep,
    user_id: CurrentUserId,
    payload: Annotated[ConversationCreate | None, Body()] = None,
) -> JSONResponse:
    """Create a conversation for the caller (title defaults to "New chat")."""
    conversation = await conversation_service.create_conversation(
        session, user_id=user_id, title=payload.title if payload else None
    )
    return envelope(ConversationResponse.model_validate(conversation), status=201)


@router.get("", response_model=ApiResponse[list[ConversationResponse]])
async def list_conversations(
    session: SessionDep,
    user_id: CurrentUserId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> JSONResponse:
    """The caller's conversations, newest activity first; `X-Total-Count` says how many there are."""
    conversations, total = await conversation_service.get_user_conversations(
        session, user_id=user_id, limit=limit, offset=offset
    )
    return envelope(
        [ConversationResponse.model_validate(c) for c in conversations],
        headers={TOTAL_COUNT_HEADER: str(total)},
    )


@router.get("/{conversation_id}", response_model=ApiResponse[ConversationDetailResponse])
async def get_conversation(session: SessionDep, user_id: CurrentUserId, conversation_id: int) -> JSONResponse:
    """One of the caller's conversations with its messages."""
    conversation, messages = await conversation_service.get_conversation_detail(
        session, conversation_id=conversation_id, user_id=user_id
    )
    return envelope(ConversationDetailResponse.of(conversation, messages))


@router.head("/{conversation_id}", response_class=Response)
async def check_conversation(session: SessionDep, user_id: CurrentUserId, conversation_id: int) -> Response:
    """200 when the conversation is the caller's, 404 otherwise: the check before a chat, which reads
    one row however long the conversation is."""
    await conversation_service.get_conversation(session, conversation_id=conversation_id, user_id=user_id)
    return Response(status_code=200)


@router.put("/{conversation_id}", response_model=ApiResponse[ConversationResponse])
async def update_conversation(
    session: SessionDep, user_id: CurrentUserId, conversation_id: int, payload: ConversationUpdate
) -> JSONResponse:
    """Rename one of the caller's conversations."""
    conversation = await conversation_service.update_title(
        session, conversation_id=conversation_id, user_id=user_id, title=payload.title
    )
    return envelope(ConversationResponse.model_validate(conversation))


@router.delete("/{conversation_id}", response_model=ApiResponse[None])
async def delete_conversation(
    session: SessionDep, user_id: CurrentUserId, conversation_id: int
) -> JSONResponse:
    """Delete one of the caller's conversations and its messages."""
    await conversation_service.delete_conversation(session, conversation_id=conversation_id, user_id=user_id)
    return envelope(None)


@router.get("/{conversation_id}/messages", response_model=ApiResponse[list[MessageResponse]])
async def list_messages(session: SessionDep, user_id: CurrentUserId, conversation_id: int) -> JSONResponse:
    """The messages of one of the caller's conversations, in the order they were written."""
    messages = await message_service.get_conversation_messages(
        session, conversation_id=conversation_id, user_id=user_id
    )
    return envelope([MessageResponse.model_validate(m) for m in messages])
