"""conversation-service, called on the user's behalf: does a conversation belong to them, is the service
up, create one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from shared.errors import AppError, NotFound
from shared.internal_http import InternalClient

logger = logging.getLogger("llm_service.conversations")

CONVERSATION_NOT_FOUND = "Conversation not found."
_UNAVAILABLE = "The conversation service is unavailable, please try again later."
_MAX_CONVERSATION_ID = 2**63 - 1  # bigint


class ConversationServiceUnavailable(AppError):
    def __init__(self) -> None:
        super().__init__(503, _UNAVAILABLE)


@contextmanager
def _unavailable_on_failure(path: str) -> Iterator[None]:
    """A call that got no answer (refused, reset, timed out, garbled) is a 503 for our caller."""
    try:
        yield
    except (aiohttp.ClientError, OSError, ValueError) as exc:  # OSError covers timeouts
        logger.warning("conversation-service call failed", extra={"path": path, "error": type(exc).__name__})
        raise ConversationServiceUnavailable() from None


class ConversationClient:
    """The calls llm-service makes; every failure to get an answer is a 503, never a 500."""

    def __init__(self, internal: InternalClient) -> None:
        self._internal = internal

    async def ensure_owned(self, *, user_id: int, conversation_id: int) -> None:
        """Return when the conversation is the user's; 404 otherwise (someone else's or missing).

        A HEAD: the answer is one row's existence, not the conversation with all its messages."""
        if not 1 <= conversation_id <= _MAX_CONVERSATION_ID:
            raise NotFound(CONVERSATION_NOT_FOUND)
        path = f"/api/conversations/{conversation_id}"
        with _unavailable_on_failure(path):
            status = await self._internal.request_status("HEAD", path, user_id=user_id)
        if status == 404:
            raise NotFound(CONVERSATION_NOT_FOUND)
        if status != 200:
            logger.error("conversation-service answered the owner check with %s", status)
            raise ConversationServiceUnavailable()

    async def ensure_up(self, *, user_id: int) -> None:
        """Return when conversation-service answers at all (`/healthz`); 503 otherwise."""
        with _unavailable_on_failure("/healthz"):
            status = await self._internal.request_status("GET", "/healthz", user_id=user_id)
        if status != 200:
            raise ConversationServiceUnavailable()

    async def create(self, *, user_id: int, title: str) -> int:
        """Create a conversation of the user's; its id."""
        path = "/api/conversations"
        with _unavailable_on_failure(path):
            status, body = await self._internal.request_json(
                "POST", path, user_id=user_id, json={"title": title}
            )
        data = body.get("data") if isinstance(body, dict) else None
        conversation_id = data.get("id") if isinstance(data, dict) else None
        if status != 201 or not isinstance(conversation_id, int):
            logger.error("conversation-service answered the creation with %s", status)
            raise ConversationServiceUnavailable()
        return conversation_id

    async def close(self) -> None:
        await self._internal.close()
