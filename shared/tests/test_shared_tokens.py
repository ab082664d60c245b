"""User access tokens and internal credentials: HS256 only, exp/iat/sub required, audience checked."""

from __future__ import annotations

import time

import jwt
import pytest
from shared.tokens import (
    InvalidToken,
    create_access_token,
    create_internal_token,
    decode_access_token,
    decode_internal_token,
)

SECRET = "s" * 64
OTHER = "o" * 64


def test_access_token_round_trip() -> None:
    assert (
        decode_access_token(create_access_token(secret=SECRET, user_id=7, expires_in=60), secret=SECRET) == 7
    )


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(
            {"sub": "7", "iat": int(time.time()), "exp": int(time.time()) - 1}, SECRET, algorithm="HS256"
        ),
        jwt.encode(
            {"sub": "7", "iat": int(time.time()), "exp": int(time.time()) + 60}, OTHER, algorithm="HS256"
        ),
        jwt.encode(
            {"sub": "7", "iat": int(time.time()), "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"
        ),
        jwt.encode({"sub": "7", "iat": int(time.time())}, SECRET, algorithm="HS256"),
        jwt.encode(
            {"sub": "7", "iat": int(time.time()), "exp": int(time.time()) + 60}, None, algorithm="none"
        ),
        jwt.encode(
            {"sub": "x", "iat": int(time.time()), "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"
        ),
        "not-a-token",
    ],
    ids=["expired", "foreign-signed", "hs512", "no-exp", "alg-none", "bad-sub", "garbage"],
)
def test_access_token_refusals(token: str) -> None:
    with pytest.raises(InvalidToken):
        decode_access_token(token, secret=SECRET)


def test_internal_token_is_bound_to_its_audience() -> None:
    token = create_internal_token(secret=SECRET, user_id=3, audience="billing-service", caller="gateway")
    assert decode_internal_token(token, secret=SECRET, audience="billing-service").user_id == 3
    with pytest.raises(InvalidToken):
        decode_internal_token(token, secret=SECRET, audience="llm-service")
    with pytest.raises(InvalidToken):
        decode_internal_token(token, secret=OTHER, audience="billing-service")


def test_internal_token_is_not_an_access_token() -> None:
    token = create_internal_token(secret=SECRET, user_id=3, audience="gateway", caller="x")
    with pytest.raises(InvalidToken):
        decode_access_token(token, secret=SECRET)
