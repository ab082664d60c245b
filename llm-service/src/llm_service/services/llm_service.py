"""The chat itself (seed §2): checks, the DashScope call, SSE frames and the completion event.

Order of a chat: the model (exists, active, an LLM), then the caller's own DashScope key and the
conversation (the caller's, asked of conversation-service: no DashScope call for someone else's, nor
while conversation-service is down) at once, then DashScope.
A new conversation is created only once DashScope has started answering, so a failure before any
output leaves nothing behind. Every reply that produced output is recorded as exactly one completion
event (CONTRACT §4), also when the client went away or DashScope failed midway.

The model is read through a cache of a few seconds (`ModelCache`); the key is read every time.
Reads use short transactions of their own rather than the request's session: a stream may wait a
minute for DashScope, and a pooled database connection must not wait with it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from functools import partial

import anyio
from shared.db import SessionFactory, storable_text, unit_of_work
from shared.errors import AppError
from shared.events import CompletionEvent, CompletionStatus, StoredMessage, Usage
from shared.models import LLM_CATEGORY, Model
from shared.security import ApiKeyCipher

from llm_service.outbox import CompletionRecorder
from llm_service.repositories import model_repository, user_repository
from llm_service.schemas.llm_schema import (
    ChatRequest,
    ChatResponse,
    ModelResponse,
    PriceTierResponse,
    PricingResponse,
    StreamChunk,
    StreamError,
    UsageInfo,
    delta_frame,
)
from llm_service.services.client_watch import Disconnected, unless_client_leaves
from llm_service.services.conversation_client import ConversationClient
from llm_service.services.dashscope_client import (
    ChatParams,
    ChatStream,
    Chunk,
    DashScopeClient,
    DashScopeError,
)
from llm_service.services.model_cache import ModelCache, ModelInfo

logger = logging.getLogger("llm_service.chat")

NO_APIKEY = "No DashScope API key is set: add yours with PUT /api/users/me/apikey."
UNSENDABLE_APIKEY = (
    "Your DashScope API key contains a control character (such as a line break), which no HTTP request "
    "can carry: set it again with PUT /api/users/me/apikey."
)
# What an HTTP header value cannot hold (RFC 9110: no C0 control but tab, no DEL).
_UNSENDABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
DONE_FRAME = b"data: [DONE]\n\n"
DEFAULT_TITLE = "New chat"
TITLE_CHARS = 50
# How long the recording of a stream that ended may take, shielded from the client's going away.
CLEANUP_SECONDS = 15.0
_NO_USAGE = Usage(input_tokens=0, output_tokens=0, total_tokens=0)


def conversation_title(request: ChatRequest) -> str:
    """The first 50 characters of the last user message (as stored; CONTRACT §2), or "New chat" when
    it is empty (a title has at least one character)."""
    return storable_text(request.last_user_message.content[:TITLE_CHARS]) or DEFAULT_TITLE


def _usage_info(usage: Usage) -> UsageInfo:
    return UsageInfo(
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, total_tokens=usage.total_tokens
    )


@dataclass(frozen=True)
class _Checked:
    """A request that passed every check: which model, and the caller's key (never logged)."""

    model_id: int
    model_name: str
    api_key: str
    params: ChatParams


@dataclass
class _Reply:
    """What a stream produced so far."""

    content: str = ""
    usage: Usage | None = None
    request_id: str = ""
    finish_reason: str | None = None
    status: CompletionStatus = "interrupted"

    def add(self, chunk: Chunk) -> None:
        """Append a delta (the final one too); usage is cumulative, so the last one counts."""
        self.content += chunk.content
        self.usage = chunk.usage or self.usage
        self.request_id = chunk.request_id or self.request_id
        if chunk.is_final:
            self.finish_reason, self.status = chunk.finish_reason, "completed"


class StreamFrames:
    """The SSE frames of a started stream (seed: `full_content += chunk.content`, `[DONE]` last).

    Whatever ends it (finished, cut by max_tokens, DashScope failing, the client going away), `_finish`
    runs once: it stops DashScope at once if the reply is unfinished, then records the reply. It is
    reached from the generator's `finally` and from `aclose`, so a stream whose frames were never
    asked for (the client left before the first) is recorded too. Until then its event is kept in flight
    (`InFlightEvent`), so that a process killed meanwhile does not lose it.
    """

    def __init__(
        self,
        stream: ChatStream,
        *,
        event_id: uuid.UUID,
        event: Callable[[_Reply], CompletionEvent],
        recorder: CompletionRecorder,
    ) -> None:
        self._stream = stream
        self._event = event
        self._recorder = recorder
        self._reply = _Reply()
        self._finished = False
        self._frames = self._generate()
        recorder.keep_in_flight(event_id, self._event_so_far)

    def _event_so_far(self) -> CompletionEvent:
        """The event as the reply stands (its first chunk included, before it was iterated); once the
        stream has finished, its final event (which has taken the unread chunk in already)."""
        reply, unread = self._reply, None if self._finished else self._stream.unread
        if unread is not None:
            reply = dataclasses.replace(reply)
            reply.add(unread)
        return self._event(reply)

    def __aiter__(self) -> StreamFrames:
        return self

    async def __anext__(self) -> bytes:
        return await self._frames.__anext__()

    async def aclose(self) -> None:
        await self._frames.aclose()
        await self._finish()

    async def _generate(self) -> AsyncGenerator[bytes, None]:
        reply = self._reply
        try:
            async for chunk in self._stream:
                reply.add(chunk)
                if chunk.is_final:
                    yield StreamChunk(
                        content=chunk.content,
                        finish_reason=chunk.finish_reason,
                        usage=_usage_info(reply.usage or _NO_USAGE),
                    ).to_sse()
                elif chunk.content:
                    yield delta_frame(chunk.content)
        except DashScopeError as exc:
            reply.finish_reason, reply.status = "error", "failed"
            reply.request_id = reply.request_id or exc.request_id
            logger.warning(
                "dashscope failed mid-stream",
                extra={"code": exc.code, "dashscope_request_id": reply.request_id},
            )
            yield StreamChunk(
                content="",
                finish_reason="error",
                usage=_usage_info(reply.usage) if reply.usage else None,
                error=StreamError(code=exc.code, message=exc.upstream_message),
            ).to_sse()
        finally:
            await self._finish()
        yield DONE_FRAME

    async def _finish(self) -> None:
        """Stop DashScope (unless done) and record the reply, once; survives the task being cancelled.

        When the client went away, Starlette cancels the sending task, and every further await in it
        is cancelled again: the DashScope connection is dropped synchronously, the rest is shielded.
        """
        if self._finished:
            return
        self._finished = True
        reply = self._reply
        unread = self._stream.unread  # the first event, when no frame was ever asked for
        if unread is not None:
            reply.add(unread)
        if reply.status != "completed":
            self._stream.abort()
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + CLEANUP_SECONDS) as scope:
            try:
                await self._stream.aclose()
            finally:  # recorded even if closing is cut short
                await self._recorder.record(self._event(reply))
        if scope.cancelled_caught:
            logger.error("recording a stream timed out", extra={"dashscope_request_id": reply.request_id})


@dataclass(frozen=True)
class StreamReply:
    """A started stream: the conversation it belongs to and its SSE frames."""

    conversation_id: int
    frames: StreamFrames


class LlmService:
    """Chat for one user with that user's own DashScope key."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        user_id: int,
        dashscope: DashScopeClient,
        conversations: ConversationClient,
        recorder: CompletionRecorder,
        cipher: ApiKeyCipher,
        models: ModelCache,
        disconnected: Disconnected,
    ) -> None:
        self._sessions = sessions
        self._disconnected = disconnected
        self._models = models
        self.user_id = user_id
        self._dashscope = dashscope
        self._conversations = conversations
        self._recorder = recorder
        self._cipher = cipher

    async def list_models(self) -> list[ModelResponse]:
        """The active LLMs with their prices, read fresh (operators' changes show at once)."""
        async with unit_of_work(self._sessions) as db:
            models = await model_repository.list_chat_models(db)
        return [_model_response(model) for model in models]

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """A whole reply; the conversation is created (if none was given) after DashScope answered.

        Not kept in flight as a stream is (a process killed meanwhile loses it): the conversation the
        event names may not exist before the reply."""
        checked = await self._check(request)
        try:
            completion = await unless_client_leaves(
                self._dashscope.complete(api_key=checked.api_key, params=checked.params), self._disconnected
            )
        except DashScopeError as exc:
            self._log_upstream_failure(exc, checked)
            raise
        conversation_id, created = await self._conversation_for(request)
        self._recorder.reply_started()
        await self._recorder.record(
            self._event(
                request,
                checked,
                conversation_id=conversation_id,
                created=created,
                event_id=uuid.uuid4(),
                reply=_Reply(
                    content=completion.content,
                    usage=completion.usage,
                    request_id=completion.request_id,
                    finish_reason=completion.finish_reason,
                    status="completed",
                ),
            )
        )
        return ChatResponse(
            content=completion.content,
            finish_reason=completion.finish_reason,
            usage=_usage_info(completion.usage),
            conversation_id=conversation_id,
        )

    async def chat_stream(self, request: ChatRequest) -> StreamReply:
        """Start a stream; returns once DashScope produced its first event, so that every failure
        before any output is still a plain JSON error (raised from here)."""
        checked = await self._check(request)
        try:
            stream = await unless_client_leaves(
                self._dashscope.open_stream(api_key=checked.api_key, params=checked.params),
                self._disconnected,
            )
        except DashScopeError as exc:
            self._log_upstream_failure(exc, checked)
            raise
        try:
            conversation_id, created = await self._conversation_for(request)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise
        event_id = uuid.uuid4()  # the final event's, and its checkpoints' while it runs
        event = partial(
            self._event, request, checked, conversation_id=conversation_id, created=created, event_id=event_id
        )
        self._recorder.reply_started()  # from here on, `StreamFrames` records it whatever happens
        frames = StreamFrames(
            stream, event_id=event_id, event=lambda reply: event(reply=reply), recorder=self._recorder
        )
        return StreamReply(conversation_id=conversation_id, frames=frames)

    async def _check(self, request: ChatRequest) -> _Checked:
        """Model, key and conversation, in that order; raises the matching 400/404/503.

        The key and the conversation are asked for at once (a database read and a call to
        conversation-service), and their failures are still reported in that order.
        """
        model = _chat_model(await self._models.get(request.model), request.model)
        api_key, conversation = await asyncio.gather(
            self._api_key(), self._check_conversation(request), return_exceptions=True
        )
        if isinstance(api_key, BaseException):
            raise api_key
        if isinstance(conversation, BaseException):
            raise conversation
        params = ChatParams(
            model=model.name,
            messages=[message.model_dump() for message in request.messages],
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_tokens,
        )
        return _Checked(model_id=model.id, model_name=model.name, api_key=api_key, params=params)

    async def _api_key(self) -> str:
        """The caller's own DashScope key, read fresh (never cached); 400 when none is set."""
        async with unit_of_work(self._sessions) as db:
            encrypted_key = await user_repository.get_encrypted_apikey(db, self.user_id)
        api_key = self._cipher.decrypt(encrypted_key, user_id=self.user_id) if encrypted_key else None
        if not api_key:
            raise AppError(400, NO_APIKEY)
        if _UNSENDABLE.search(api_key):  # stored as given (CONTRACT), but it cannot reach DashScope
            raise AppError(400, UNSENDABLE_APIKEY)
        return api_key

    async def _check_conversation(self, request: ChatRequest) -> None:
        """404 unless the given conversation is the caller's. Without one, a 503 unless conversation-service
        is up: the conversation is created only after DashScope answered, and a reply with nowhere to be
        kept would be paid for and lost."""
        if request.conversation_id is None:
            await self._conversations.ensure_up(user_id=self.user_id)
        else:
            await self._conversations.ensure_owned(
                user_id=self.user_id, conversation_id=request.conversation_id
            )

    async def _conversation_for(self, request: ChatRequest) -> tuple[int, bool]:
        """The given conversation, or a new one titled from the message; and whether it is new."""
        if request.conversation_id is not None:
            return request.conversation_id, False
        conversation_id = await self._conversations.create(
            user_id=self.user_id, title=conversation_title(request)
        )
        return conversation_id, True

    def _event(
        self,
        request: ChatRequest,
        checked: _Checked,
        *,
        conversation_id: int,
        created: bool,
        event_id: uuid.UUID,
        reply: _Reply,
    ) -> CompletionEvent:
        """The completion event; it names the model but carries no key. A stream's checkpoints and its final
        event share one `event_id`, so that consumers apply only one of them."""
        to_store = []
        first = request.messages[0]
        if created and first.role == "system":
            to_store.append(StoredMessage(role="system", content=first.content))
        to_store.append(StoredMessage(role="user", content=request.last_user_message.content))
        return CompletionEvent(
            event_id=event_id,
            user_id=self.user_id,
            conversation_id=conversation_id,
            model_id=checked.model_id,
            model_name=checked.model_name,
            request_id=reply.request_id,
            messages_to_store=to_store,
            assistant_content=reply.content,
            finish_reason=reply.finish_reason,
            status=reply.status,
            usage=reply.usage or _NO_USAGE,
        )

    def _log_upstream_failure(self, exc: DashScopeError, checked: _Checked) -> None:
        logger.warning(
            "dashscope call failed",
            extra={
                "kind": exc.kind,
                "code": exc.code,
                "status": exc.status,
                "model": checked.model_name,
                "dashscope_request_id": exc.request_id,
            },
        )


def _chat_model(model: ModelInfo | None, name: str) -> ModelInfo:
    """The model when it can chat: it exists, is active and is an LLM; 400 otherwise."""
    shown = storable_text(name if len(name) <= 128 else name[:128] + "…")  # can be sent as UTF-8
    if model is None or not model.is_active:
        raise AppError(400, f"Unknown model: {shown}.")
    if model.category != LLM_CATEGORY:
        raise AppError(400, f"Model {shown} is not a chat model.")
    return model


def _model_response(model: Model) -> ModelResponse:
    price = model.price
    pricing = None
    if price is not None:
        pricing = PricingResponse(
            billing_mode=price.billing_mode,
            currency=price.currency,
            input_price=price.input_price,
            output_price=price.output_price,
            tiers=[
                PriceTierResponse(
                    min_tokens=tier.min_tokens,
                    max_tokens=tier.max_tokens,
                    input_price=tier.input_price,
                    output_price=tier.output_price,
                )
                for tier in price.tiers
            ],
        )
    return ModelResponse(
        id=model.id,
        name=model.name,
        display_name=model.display_name,
        category=model.category,
        description=model.description,
        pricing=pricing,
    )
