"""User access tokens and internal credentials: HS256 only, exp/iat/sub required, audience checked."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from shared.tokens import (
    InvalidToken,
    create_access_token,
    create_internal_token,
    decode_access_token,
    decode_internal_token,
)

from shared import tokens

SECRET = "s" * 64
OTHER = "o" * 64


def test_access_token_round_trip() -> None:
    before = time.time()
    token = decode_access_token(create_access_token(secret=SECRET, user_id=7, expires_in=60), secret=SECRET)
    assert token.user_id == 7
    assert before + 59 <= token.expires_at <= time.time() + 60


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


@pytest.mark.parametrize(
    "extra",
    [{"iss": "some-issuer"}, {"aud": "some-app"}, {"typ": "JWT"}, {"jti": "1", "nbf": 0, "name": "x"}],
)
def test_an_access_token_may_carry_more_claims(extra: dict[str, Any]) -> None:
    """CONTRACT: a token carries at least sub, iat and exp; whatever else it says is not refused."""
    now = int(time.time())
    token = jwt.encode({"sub": "7", "iat": now, "exp": now + 60, **extra}, SECRET, algorithm="HS256")
    assert decode_access_token(token, secret=SECRET).user_id == 7


@pytest.mark.parametrize(
    "sub",
    ["0", "-1", "+7", "07", " 7", "7 ", "\u0667", "\u00b2", "9223372036854775808", "1" * 30, ""],
)
def test_sub_must_be_a_user_id_as_issued(sub: str) -> None:
    """Only the form `str(user_id)` of a bigint id: no sign, leading zero, space or non-ASCII digit."""
    now = int(time.time())
    token = jwt.encode({"sub": sub, "iat": now, "exp": now + 60}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        decode_access_token(token, secret=SECRET)


def test_the_largest_bigint_is_a_user_id() -> None:
    token = create_access_token(secret=SECRET, user_id=2**63 - 1, expires_in=60)
    assert decode_access_token(token, secret=SECRET).user_id == 2**63 - 1


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


def test_internal_credentials_are_reused_for_half_their_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    signed: list[int] = []

    def sign(**claims: Any) -> str:
        signed.append(claims["user_id"])
        return create_internal_token(**claims)

    monkeypatch.setattr(tokens.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(tokens, "create_internal_token", sign)
    issuer = tokens.InternalTokens(secret=SECRET, audience="llm-service", caller="gateway", ttl=60)
    first = issuer.for_user(7)
    assert decode_internal_token(first, secret=SECRET, audience="llm-service").user_id == 7
    clock[0] += 29
    assert issuer.for_user(7) == first
    assert decode_internal_token(issuer.for_user(8), secret=SECRET, audience="llm-service").user_id == 8
    assert signed == [7, 8]
    clock[0] += 2  # past half the lifetime: signed anew
    renewed = issuer.for_user(7)
    assert signed == [7, 8, 7]
    with pytest.raises(InvalidToken):
        decode_internal_token(renewed, secret=SECRET, audience="conversation-service")
