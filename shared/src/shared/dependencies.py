"""Dependencies every backend service shares: the request's session and the caller it acts for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Unauthorized
from shared.tokens import INTERNAL_TOKEN_HEADER, InvalidToken, decode_internal_token


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: committed after the endpoint returns, rolled back on error."""
    async with request.app.state.session_factory() as session, session.begin():
        yield session


# scope="function": the commit happens before the response is sent, so a client that reads right
# after a write sees it.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_internal_user_id(request: Request) -> int:
    """The user a gateway- or service-signed credential names; 401 without a valid one for this service."""
    token = request.headers.get(INTERNAL_TOKEN_HEADER)
    if not token:
        raise Unauthorized("This service is reachable only through the gateway.")
    try:
        identity = decode_internal_token(
            token, secret=request.app.state.settings.internal_secret, audience=request.app.state.service_name
        )
    except InvalidToken as exc:
        raise Unauthorized("The internal credential is not valid.") from exc
    return identity.user_id


CurrentUserId = Annotated[int, Depends(get_internal_user_id)]
